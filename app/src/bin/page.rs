//! The page: mounts the Leptos playground.
#[cfg(target_arch = "wasm32")]
fn main() {
    sparselab_app::constructors::run_once();
    sparselab_app::ui::mount();
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!("the playground page is built for the browser: run `scripts/serve-app.sh`");
    std::process::exit(2);
}
