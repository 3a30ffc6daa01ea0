import { render, screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import App from './App.jsx';

const DUNE = { id: 1, title: 'Dune', author: 'Frank Herbert', year: 1965 };
const EMMA = { id: 2, title: 'Emma', author: 'Jane Austen', year: null };

const json = (status, body) =>
  new Response(body === undefined ? null : JSON.stringify(body), {
    status,
    headers: { 'Content-Type': 'application/json' },
  });

// Each test queues the responses the API would give, in order.
let fetchMock;
beforeEach(() => {
  fetchMock = vi.fn();
  vi.stubGlobal('fetch', fetchMock);
});
afterEach(() => vi.unstubAllGlobals());

const bookList = () => screen.findByRole('list', { name: 'Books' });

describe('App', () => {
  it('lists the books from /api/books', async () => {
    fetchMock.mockResolvedValueOnce(json(200, [DUNE, EMMA]));
    render(<App />);

    const items = within(await bookList()).getAllByRole('listitem');
    expect(items.map((li) => li.textContent)).toEqual([
      'Dune by Frank Herbert (1965)Delete',
      'Emma by Jane AustenDelete',
    ]);
    expect(fetchMock).toHaveBeenCalledWith('/api/books', undefined);
  });

  it('says when there are no books', async () => {
    fetchMock.mockResolvedValueOnce(json(200, []));
    render(<App />);
    expect(await screen.findByText('No books yet.')).toBeInTheDocument();
  });

  it('adds a book and clears the form', async () => {
    const user = userEvent.setup();
    fetchMock.mockResolvedValueOnce(json(200, [DUNE])).mockResolvedValueOnce(json(201, EMMA));
    render(<App />);
    await bookList();

    await user.type(screen.getByLabelText('Title'), 'Emma');
    await user.type(screen.getByLabelText('Author'), 'Jane Austen');
    await user.click(screen.getByRole('button', { name: 'Add' }));

    expect(await screen.findByText('Emma')).toBeInTheDocument();
    const [url, options] = fetchMock.mock.calls[1];
    expect(url).toBe('/api/books');
    expect(options.method).toBe('POST');
    expect(options.headers['Content-Type']).toBe('application/json');
    // An empty year is sent as null, not as 0 or "".
    expect(JSON.parse(options.body)).toEqual({ title: 'Emma', author: 'Jane Austen', year: null });
    expect(screen.getByLabelText('Title')).toHaveValue('');
  });

  it('sends the year as a number', async () => {
    const user = userEvent.setup();
    fetchMock.mockResolvedValueOnce(json(200, [])).mockResolvedValueOnce(json(201, DUNE));
    render(<App />);
    await screen.findByText('No books yet.');

    await user.type(screen.getByLabelText('Title'), 'Dune');
    await user.type(screen.getByLabelText('Author'), 'Frank Herbert');
    await user.type(screen.getByLabelText('Year'), '1965');
    await user.click(screen.getByRole('button', { name: 'Add' }));

    await screen.findByText('Dune');
    expect(JSON.parse(fetchMock.mock.calls[1][1].body).year).toBe(1965);
  });

  it("shows the API's validation error and keeps the input", async () => {
    const user = userEvent.setup();
    fetchMock
      .mockResolvedValueOnce(json(200, []))
      .mockResolvedValueOnce(json(400, { error: 'title must not be empty', field: 'title' }));
    render(<App />);
    await screen.findByText('No books yet.');

    await user.type(screen.getByLabelText('Title'), '   ');
    await user.type(screen.getByLabelText('Author'), 'Someone');
    await user.click(screen.getByRole('button', { name: 'Add' }));

    expect(await screen.findByRole('alert')).toHaveTextContent('title must not be empty');
    expect(screen.getByLabelText('Author')).toHaveValue('Someone');
    expect(screen.getByText('No books yet.')).toBeInTheDocument();
  });

  it('deletes a book', async () => {
    const user = userEvent.setup();
    fetchMock.mockResolvedValueOnce(json(200, [DUNE, EMMA])).mockResolvedValueOnce(json(204));
    render(<App />);
    await bookList();

    await user.click(screen.getByRole('button', { name: 'Delete Dune' }));

    await waitFor(() => expect(screen.queryByText('Dune')).not.toBeInTheDocument());
    expect(screen.getByText('Emma')).toBeInTheDocument();
    expect(fetchMock).toHaveBeenLastCalledWith('/api/books/1', { method: 'DELETE' });
  });

  it('keeps the book and shows the error when a delete fails', async () => {
    const user = userEvent.setup();
    fetchMock.mockResolvedValueOnce(json(200, [DUNE])).mockResolvedValueOnce(json(404, { error: 'book 1 not found' }));
    render(<App />);
    await bookList();

    await user.click(screen.getByRole('button', { name: 'Delete Dune' }));

    expect(await screen.findByRole('alert')).toHaveTextContent('book 1 not found');
    expect(screen.getByText('Dune')).toBeInTheDocument();
  });

  it('shows the status when loading fails with a non-JSON answer', async () => {
    fetchMock.mockResolvedValueOnce(new Response('<html>Bad Gateway</html>', { status: 502, statusText: 'Bad Gateway' }));
    render(<App />);
    expect(await screen.findByRole('alert')).toHaveTextContent('request failed: 502 Bad Gateway');
    expect(screen.queryByText('Loading…')).not.toBeInTheDocument();
  });

  it('shows a network error', async () => {
    fetchMock.mockRejectedValueOnce(new TypeError('Failed to fetch'));
    render(<App />);
    expect(await screen.findByRole('alert')).toHaveTextContent('Failed to fetch');
  });
});
