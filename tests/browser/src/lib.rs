//! Empty: the tests in `tests/` run only on wasm32, in a browser (see the book's
//! "Browser tests").
