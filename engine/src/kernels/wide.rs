//! The innermost CPU loops compiled a second time for AVX2, picked at run time. The binary
//! targets baseline x86-64, whose vectors hold 4 f32; AVX2's hold 8. The loops are the
//! same Rust either way: the same operations per element in the same order (Rust never
//! fuses a multiply and an add), so the same bits. Elsewhere (wasm, ARM) they run as built.

/// Defines `fn name(args) -> ret { body }` twice: as written, and inlined into a copy
/// built with AVX2, which runs where the CPU has it. The body is a loop over slices; its
/// arguments are plain names.
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
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU has AVX2, checked just above.
                return unsafe { avx2($($arg),*) };
            }
            body($($arg),*)
        }
    };
}
pub(crate) use wide_fn;
