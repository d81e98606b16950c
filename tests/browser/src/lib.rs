//! Empty: the tests in `tests/` run only on wasm32, in a browser (see the README's
//! "Browser tests").
