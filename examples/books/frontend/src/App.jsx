import { useEffect, useState } from 'react';
import { addBook, deleteBook, listBooks } from './api.js';

const EMPTY = { title: '', author: '', year: '' };

export default function App() {
  const [books, setBooks] = useState([]);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState(null);
  const [form, setForm] = useState(EMPTY);

  useEffect(() => {
    listBooks()
      .then(setBooks)
      .catch((err) => setError(err.message))
      .finally(() => setLoading(false));
  }, []);

  async function onSubmit(event) {
    event.preventDefault();
    setError(null);
    try {
      const book = await addBook({
        title: form.title,
        author: form.author,
        year: form.year === '' ? null : Number(form.year),
      });
      setBooks((current) => [...current, book]);
      setForm(EMPTY);
    } catch (err) {
      setError(err.message);
    }
  }

  async function onDelete(id) {
    setError(null);
    try {
      await deleteBook(id);
      setBooks((current) => current.filter((book) => book.id !== id));
    } catch (err) {
      setError(err.message);
    }
  }

  const field = (name) => ({
    name,
    value: form[name],
    onChange: (event) => setForm({ ...form, [name]: event.target.value }),
  });

  return (
    <main>
      <h1>Books</h1>
      {error && <p role="alert">{error}</p>}

      <form onSubmit={onSubmit} aria-label="Add a book">
        <label>
          Title <input {...field('title')} required />
        </label>
        <label>
          Author <input {...field('author')} required />
        </label>
        <label>
          Year <input {...field('year')} type="number" />
        </label>
        <button type="submit">Add</button>
      </form>

      {loading ? (
        <p>Loading…</p>
      ) : books.length === 0 ? (
        <p>No books yet.</p>
      ) : (
        <ul aria-label="Books">
          {books.map((book) => (
            <li key={book.id}>
              <span>
                <strong>{book.title}</strong> by {book.author}
                {book.year != null && ` (${book.year})`}
              </span>
              <button type="button" onClick={() => onDelete(book.id)} aria-label={`Delete ${book.title}`}>
                Delete
              </button>
            </li>
          ))}
        </ul>
      )}
    </main>
  );
}
