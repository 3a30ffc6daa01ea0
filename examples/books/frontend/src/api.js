// Relative URLs: the Ingress serves the API under /api on the same host as this page.
const BOOKS = '/api/books';

export class ApiError extends Error {
  constructor(message, field) {
    super(message);
    this.field = field;
  }
}

async function request(url, options) {
  const response = await fetch(url, options);
  if (response.ok) {
    return response.status === 204 ? null : response.json();
  }
  // The API answers {"error": "...", "field": "..."}; anything else (a proxy's HTML page) gets the status.
  let body = {};
  try {
    body = await response.json();
  } catch {
    // not JSON
  }
  throw new ApiError(body.error || `request failed: ${response.status} ${response.statusText}`.trim(), body.field);
}

export const listBooks = () => request(BOOKS);

export const addBook = (book) =>
  request(BOOKS, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(book),
  });

export const deleteBook = (id) => request(`${BOOKS}/${id}`, { method: 'DELETE' });
