//! The worker: runs the engine off the page's thread.
#[cfg(target_arch = "wasm32")]
fn main() {
    sparselab_app::constructors::run_once();
    sparselab_app::worker::start();
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!("the playground's worker runs in the browser: run `scripts/serve-app.sh`");
    std::process::exit(2);
}
