//! Flex tensors as the CPU loops read and write them: a tensor's own buffer when it is
//! contiguous from its start (the usual case), a copy only where it is a strided view, and
//! each result one new buffer (or the input's own, written in place: `owned_f32`).

use burn::backend::flex::FlexTensor;
use burn::tensor::{DType, Shape, TensorData};
use std::borrow::Cow;

/// A float tensor's elements in row-major order.
pub fn f32_elements(t: &FlexTensor) -> Cow<'_, [f32]> {
    let n = t.layout().num_elements();
    if t.dtype() == DType::F32 && t.is_contiguous() && t.layout().start_offset() == 0 {
        Cow::Borrowed(&t.storage::<f32>()[..n])
    } else {
        let data = t.to_contiguous().into_data().convert::<f32>();
        Cow::Owned(data.try_into_vec::<f32>().expect("f32 data"))
    }
}

/// An int tensor's elements as i32 (Flex may store ints as i64).
pub fn i32_elements(t: &FlexTensor) -> Cow<'_, [i32]> {
    let n = t.layout().num_elements();
    if t.dtype() == DType::I32 && t.is_contiguous() && t.layout().start_offset() == 0 {
        Cow::Borrowed(&t.storage::<i32>()[..n])
    } else {
        let data = t.to_contiguous().into_data().convert::<i32>();
        Cow::Owned(data.try_into_vec::<i32>().expect("i32 data"))
    }
}

/// A new float tensor owning `values`.
pub fn tensor(values: Vec<f32>, shape: Shape) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}

/// A float tensor whose storage is exactly its elements in row-major order, for writing
/// in place with `storage_mut` (which copies only if the buffer is shared).
pub fn owned_f32(t: FlexTensor) -> FlexTensor {
    let n = t.layout().num_elements();
    let exact = t.dtype() == DType::F32
        && t.is_contiguous()
        && t.layout().start_offset() == 0
        && t.storage::<f32>().len() == n;
    if exact {
        t
    } else {
        let shape = t.layout().shape().clone();
        tensor(f32_elements(&t).into_owned(), shape)
    }
}
