//! The innermost CPU loops compiled a second time for AVX2, picked at run time. The binary
//! targets baseline x86-64, whose vectors hold 4 f32; AVX2's hold 8. The loops are the
//! same Rust either way: the same operations per element in the same order (Rust never
//! fuses a multiply and an add), so the same bits. Elsewhere (wasm, ARM) they run as built.

/// Defines `fn name(args) -> ret { body }` twice: as written, and inlined into a copy
/// built with AVX2, which runs where the CPU has it (and tests have not turned it off).
/// The body is an innermost loop; its arguments are plain names.
macro_rules! wide_fn {
    ($(#[$attr:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$attr])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            fn body($($arg: $ty),*) $(-> $ret)? $body

            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2")]
            fn avx2($($arg: $ty),*) $(-> $ret)? {
                body($($arg),*)
            }

            #[cfg(target_arch = "x86_64")]
            if $crate::kernels::wide::avx2_allowed() && std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU has AVX2, checked just above.
                return unsafe { avx2($($arg),*) };
            }
            body($($arg),*)
        }
    };
}
pub(crate) use wide_fn;

/// Tests run the baseline copy on a machine with AVX2 by turning the AVX2 copies off; for
/// everything else they are on. Both copies must give the same bits, so a test running
/// alongside sees no difference.
#[cfg(test)]
static AVX2_OFF: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

#[cfg(test)]
pub(crate) fn set_avx2_off(off: bool) {
    AVX2_OFF.store(off, std::sync::atomic::Ordering::SeqCst);
}

/// Whether the AVX2 copies may run (always, outside tests).
#[cfg(all(target_arch = "x86_64", not(test)))]
#[inline(always)]
pub(crate) fn avx2_allowed() -> bool {
    true
}

#[cfg(all(target_arch = "x86_64", test))]
pub(crate) fn avx2_allowed() -> bool {
    !AVX2_OFF.load(std::sync::atomic::Ordering::SeqCst)
}
