/**
 * productpage's stylesheet, served by productpage itself at
 * /static/bookinfo.css (the ingress routes /static to it, as Istio's
 * bookinfo-gateway does): no CDN, so the page looks right offline. The layout
 * follows Istio's Bookinfo page — a dark navigation bar with the sign-in, the
 * book's title and summary, then details and reviews side by side.
 */
export const STYLESHEET = `
:root {
  --ink: #1f2933;
  --muted: #52606d;
  --line: #d9e2ec;
  --bar: #243b53;
  --accent: #2f80ed;
  --paper: #ffffff;
  --page: #f5f7fa;
}
* { box-sizing: border-box; }
html { font-size: 16px; }
body {
  margin: 0;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  line-height: 1.5;
  color: var(--ink);
  background: var(--page);
}
a { color: var(--accent); }
nav.bar {
  display: flex;
  align-items: center;
  justify-content: space-between;
  padding: 0.75rem 1.5rem;
  background: var(--bar);
  color: #fff;
}
nav.bar .brand { font-weight: 600; font-size: 1.15rem; color: #fff; text-decoration: none; }
nav.bar .user { display: flex; gap: 0.75rem; align-items: center; }
nav.bar a.button, button, .button {
  display: inline-block;
  padding: 0.4rem 0.9rem;
  border: 1px solid transparent;
  border-radius: 4px;
  background: var(--accent);
  color: #fff;
  font: inherit;
  text-decoration: none;
  cursor: pointer;
}
nav.bar a.button.secondary { background: transparent; border-color: #9fb3c8; }
main { max-width: 60rem; margin: 2rem auto; padding: 0 1.5rem; }
.product { text-align: center; margin-bottom: 2rem; }
.product h1 { margin: 0 0 0.5rem; font-size: 1.9rem; font-weight: 600; }
.product p { margin: 0 auto; max-width: 40rem; color: var(--muted); }
.columns { display: grid; grid-template-columns: 1fr 1fr; gap: 1.5rem; }
@media (max-width: 40rem) { .columns { grid-template-columns: 1fr; } }
section.card {
  background: var(--paper);
  border: 1px solid var(--line);
  border-radius: 6px;
  padding: 1.25rem 1.5rem;
}
section.card h2 { margin: 0 0 1rem; font-size: 1.2rem; font-weight: 600; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 0.35rem 1rem; margin: 0; }
dl.facts dt { font-weight: 600; }
dl.facts dd { margin: 0; }
blockquote { margin: 0 0 1.25rem; padding-left: 1rem; border-left: 3px solid var(--line); }
blockquote p { margin: 0 0 0.25rem; }
blockquote small { color: var(--muted); }
.stars { margin: 0.25rem 0 0; font-size: 1.2rem; letter-spacing: 0.1rem; }
.served-by { margin: 0; color: var(--muted); font-size: 0.9rem; }
.error, .rating-error { color: #b42318; }
form.login {
  max-width: 22rem;
  margin: 3rem auto;
  background: var(--paper);
  border: 1px solid var(--line);
  border-radius: 6px;
  padding: 1.5rem;
}
form.login h1 { margin: 0 0 1rem; font-size: 1.3rem; }
form.login label { display: block; margin: 0 0 0.25rem; font-weight: 600; }
form.login input {
  display: block;
  width: 100%;
  margin: 0 0 1rem;
  padding: 0.45rem 0.6rem;
  border: 1px solid #9fb3c8;
  border-radius: 4px;
  font: inherit;
}
`;
