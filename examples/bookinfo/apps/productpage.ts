/**
 * Bookinfo `productpage`: renders the book page from `details` and `reviews`
 * (Istio's productpage, in TypeScript). A logged-in user (cookie `user`) is
 * sent to reviews as `end-user`, which Istio's samples route on. A failing
 * part is replaced by Istio's error text; the page itself still answers 200.
 */
import type * as http from 'node:http';
import { env, forwardedHeaders, getJson, sendJson, serve } from './common.js';
import { STYLESHEET } from './stylesheet.js';

const detailsUrl = env('DETAILS_URL', 'http://details:9080');
const reviewsUrl = env('REVIEWS_URL', 'http://reviews:9080');
const PRODUCTS = [
  {
    id: 0,
    title: 'The Comedy of Errors',
    descriptionHtml:
      '<a href="https://en.wikipedia.org/wiki/The_Comedy_of_Errors">Wikipedia Summary</a>: The Comedy of Errors is one of William Shakespeare\'s early plays.',
  },
];

const escape = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${String(c.charCodeAt(0))};`);

function userOf(req: http.IncomingMessage): string | undefined {
  const m = /(?:^|;\s*)user=([^;]+)/.exec(req.headers.cookie ?? '');
  return m?.[1] === undefined ? undefined : decodeURIComponent(m[1]);
}

function headersFor(req: http.IncomingMessage): Record<string, string> {
  const headers = forwardedHeaders(req);
  const user = userOf(req);
  if (user !== undefined) headers['end-user'] = user;
  return headers;
}

interface Review {
  reviewer: string;
  text: string;
  rating?: { stars?: number; color?: string; error?: string };
}

function reviewsHtml(result: Awaited<ReturnType<typeof getJson>>): string {
  if (!result.ok)
    return '<p class="error">Sorry, product reviews are currently unavailable for this book.</p>';
  const body = result.body as { podname?: string; reviews?: Review[] };
  const items = (body.reviews ?? []).map((r) => {
    let stars = '';
    if (r.rating?.error !== undefined)
      stars = `<p class="rating-error">${escape(r.rating.error)}</p>`;
    else if (r.rating?.stars !== undefined) {
      const color = escape(r.rating.color ?? 'black');
      stars = `<p class="stars stars-${color}">${`<span class="star" style="color:${color}">★</span>`.repeat(r.rating.stars)}</p>`;
    }
    return `<blockquote><p>${escape(r.text)}</p><small>${escape(r.reviewer)}</small>${stars}</blockquote>`;
  });
  return `${items.join('\n')}\n<p class="served-by">Reviews served by: <u>${escape(body.podname ?? 'unknown')}</u></p>`;
}

function detailsHtml(result: Awaited<ReturnType<typeof getJson>>): string {
  if (!result.ok)
    return '<p class="error">Sorry, product details are currently unavailable for this book.</p>';
  const d = result.body as Record<string, unknown>;
  const row = (k: string): string => `<dt>${escape(k)}:</dt><dd>${escape(String(d[k]))}</dd>`;
  return `<dl class="facts">${['type', 'pages', 'publisher', 'language', 'ISBN-10', 'ISBN-13'].map(row).join('')}</dl>`;
}

/** A whole page with the stylesheet productpage serves itself. */
function page(title: string, body: string): string {
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escape(title)}</title>
<link rel="stylesheet" href="/static/bookinfo.css"></head>
<body>
${body}
</body></html>
`;
}

function navBar(user: string | undefined): string {
  const right =
    user === undefined
      ? '<a class="button" href="/login">Sign in</a>'
      : `<span>${escape(user)}</span> <a class="button secondary" href="/logout">Sign out</a>`;
  return `<nav class="bar"><a class="brand" href="/productpage">BookInfo Sample</a><div class="user">${right}</div></nav>`;
}

serve('productpage', async (req, res) => {
  const url = new URL(req.url ?? '/', 'http://productpage');
  const path = url.pathname;
  if (path === '/health') {
    sendJson(res, 200, { status: 'Product page is healthy' });
    return;
  }
  if (path === '/login' && req.method === 'POST') {
    let body = '';
    for await (const chunk of req) body += String(chunk);
    const user = new URLSearchParams(body).get('username') ?? '';
    res.writeHead(302, {
      location: '/productpage',
      'set-cookie': `user=${encodeURIComponent(user)}; Path=/`,
    });
    return res.end();
  }
  if (path === '/login') {
    const user = url.searchParams.get('username');
    if (user !== null) {
      res.writeHead(302, {
        location: '/productpage',
        'set-cookie': `user=${encodeURIComponent(user)}; Path=/`,
      });
      return res.end();
    }
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    return res.end(
      page(
        'Sign in',
        `${navBar(undefined)}
<form class="login" method="post" action="/login">
<h1>Sign in</h1>
<label for="username">User name</label>
<input id="username" name="username" autocomplete="username" required autofocus>
<label for="passwd">Password</label>
<input id="passwd" type="password" name="passwd" autocomplete="current-password">
<button type="submit">Sign in</button>
</form>`,
      ),
    );
  }
  if (path === '/static/bookinfo.css') {
    res.writeHead(200, {
      'content-type': 'text/css; charset=utf-8',
      'cache-control': 'max-age=300',
      'content-length': Buffer.byteLength(STYLESHEET),
    });
    return res.end(STYLESHEET);
  }
  if (path === '/logout') {
    res.writeHead(302, { location: '/productpage', 'set-cookie': 'user=; Path=/; Max-Age=0' });
    return res.end();
  }
  if (path === '/api/v1/products') {
    sendJson(
      res,
      200,
      PRODUCTS.map((p) => ({ id: p.id, title: p.title, descriptionHtml: p.descriptionHtml })),
    );
    return;
  }
  const api = /^\/api\/v1\/products\/(\d+)(?:\/(reviews|ratings))?$/.exec(path);
  if (api !== null) {
    const id = api[1] ?? '0';
    if (api[2] === undefined) {
      const r = await getJson(`${detailsUrl}/details/${id}`, headersFor(req), 3000);
      sendJson(
        res,
        r.ok ? 200 : 503,
        r.ok
          ? r.body
          : { error: 'Sorry, product details are currently unavailable for this book.' },
      );
      return;
    }
    const r = await getJson(`${reviewsUrl}/reviews/${id}`, headersFor(req), 3000);
    sendJson(
      res,
      r.ok ? 200 : 503,
      r.ok ? r.body : { error: 'Sorry, product reviews are currently unavailable for this book.' },
    );
    return;
  }
  if (path === '/' || path === '/index.html') {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    return res.end(
      page(
        'Simple Bookstore App',
        `${navBar(userOf(req))}
<main><div class="product"><h1>Hello! This is a simple bookstore application consisting of three services as shown below</h1>
<p><a href="/productpage?u=normal">Normal user</a></p></div></main>`,
      ),
    );
  }
  if (path !== '/productpage') {
    sendJson(res, 404, { error: 'not found' });
    return;
  }
  const headers = headersFor(req);
  const [details, reviews] = await Promise.all([
    getJson(`${detailsUrl}/details/0`, headers, 3000),
    getJson(`${reviewsUrl}/reviews/0`, headers, 3000),
  ]);
  const user = userOf(req);
  const product = PRODUCTS[0];
  const html = page(
    'Simple Bookstore App',
    `${navBar(user)}
<main>
<div class="product"><h1>${escape(product?.title ?? '')}</h1>
<p>${product?.descriptionHtml ?? ''}</p></div>
<div class="columns">
<section class="card details"><h2>Book Details</h2>${detailsHtml(details)}</section>
<section class="card reviews"><h2>Book Reviews</h2>${reviewsHtml(reviews)}</section>
</div>
</main>`,
  );
  res.writeHead(200, {
    'content-type': 'text/html; charset=utf-8',
    'content-length': Buffer.byteLength(html),
  });
  res.end(html);
});
