/**
 * Bookinfo `reviews` (SERVICE_VERSION v1, v2 or v3): two reviews; v2 adds
 * black star ratings from `ratings`, v3 red ones; v1 calls nothing. When
 * ratings fails, v2/v3 still answer with a rating error, as Istio's app does.
 */
import { env, forwardedHeaders, getJson, sendJson, serve } from './common.js';

const version = env('SERVICE_VERSION', 'v1');
const ratingsUrl = env('RATINGS_URL', 'http://ratings:9080');
const color = version === 'v3' ? 'red' : 'black';

serve(`reviews-${version}`, async (req, res) => {
  const url = new URL(req.url ?? '/', 'http://reviews');
  if (url.pathname === '/health') {
    sendJson(res, 200, { status: 'Reviews is healthy' });
    return;
  }
  const m = /^\/reviews\/(\d+)$/.exec(url.pathname);
  if (m === null) {
    sendJson(res, 404, { error: 'not found' });
    return;
  }
  const id = Number(m[1]);
  const reviews: Record<string, unknown>[] = [
    {
      reviewer: 'Reviewer1',
      text: 'An extremely entertaining play by Shakespeare. The slapstick humour is refreshing!',
    },
    {
      reviewer: 'Reviewer2',
      text: 'Absolutely fun and entertaining. The play lacks thematic depth when compared to other plays by Shakespeare.',
    },
  ];
  if (version !== 'v1') {
    // 10 s, as Istio's reviews app: under the 7 s delay fault productpage (3 s) gives up first —
    // the timeout bug Istio's fault-injection task reveals.
    const ratings = await getJson(
      `${ratingsUrl}/ratings/${String(id)}`,
      forwardedHeaders(req),
      10_000,
    );
    for (const [i, review] of reviews.entries()) {
      if (!ratings.ok) review['rating'] = { error: 'Ratings service is currently unavailable' };
      else {
        const stars = (ratings.body as { ratings?: Record<string, number> }).ratings?.[
          `Reviewer${String(i + 1)}`
        ];
        review['rating'] = { stars, color };
      }
    }
  }
  sendJson(res, 200, {
    id: String(id),
    podname: env('POD_NAME', `reviews-${version}`),
    clustername: 'null',
    reviews,
  });
});
