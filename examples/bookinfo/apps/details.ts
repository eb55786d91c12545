/** Bookinfo `details`: the book's facts (Istio's details service, in TypeScript). */
import { sendJson, serve } from './common.js';

serve('details', (req, res) => {
  const url = new URL(req.url ?? '/', 'http://details');
  if (url.pathname === '/health') {
    sendJson(res, 200, { status: 'Details is healthy' });
    return;
  }
  const m = /^\/details\/(\d+)$/.exec(url.pathname);
  if (m === null) {
    sendJson(res, 404, { error: 'please provide a numeric product id' });
    return;
  }
  sendJson(res, 200, {
    id: Number(m[1]),
    author: 'William Shakespeare',
    year: 1595,
    type: 'paperback',
    pages: 200,
    publisher: 'PublisherA',
    language: 'English',
    'ISBN-10': '1234567890',
    'ISBN-13': '123-1234567890',
  });
});
