/** Bookinfo `ratings`: two reviewers' star ratings (Istio's ratings service, in TypeScript). */
import { sendJson, serve } from './common.js';

serve('ratings', (req, res) => {
  const url = new URL(req.url ?? '/', 'http://ratings');
  if (url.pathname === '/health') {
    sendJson(res, 200, { status: 'Ratings is healthy' });
    return;
  }
  const m = /^\/ratings\/(\d+)$/.exec(url.pathname);
  if (m === null) {
    sendJson(res, 400, { error: 'please provide numeric product ID' });
    return;
  }
  sendJson(res, 200, { id: Number(m[1]), ratings: { Reviewer1: 5, Reviewer2: 4 } });
});
