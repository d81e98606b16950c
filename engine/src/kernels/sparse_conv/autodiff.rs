//! Autodiff: the backward pass of `sparse_conv2d` is the two gradient kernels.

use super::*;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::{Autodiff, NodeId};
use burn::backend::{
    AutodiffBackend, Backend,
    tensor::{FloatTensor, IntTensor},
};

#[derive(Debug)]
struct SparseConvBackward;

/// The index tensors and geometry the backward pass needs.
#[derive(Clone, Debug)]
struct SavedIndex<B: Backend> {
    row_start: IntTensor<B>,
    row_entries: IntTensor<B>,
    col_start: IntTensor<B>,
    col_entries: IntTensor<B>,
    geometry: ConvGeometry,
}

impl<B: Backend + SparseConvBackend> Backward<B, 2> for SparseConvBackward {
    type State = (NodeId, NodeId, SavedIndex<B>);

    fn backward(
        self,
        ops: Ops<Self::State, 2>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_weight] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (x_state, weight_state, saved) = ops.state;
        let x = checkpointer.retrieve_node_output::<FloatTensor<B>>(x_state);
        let weight = checkpointer.retrieve_node_output::<FloatTensor<B>>(weight_state);
        if let Some(node) = node_x {
            let dx = B::sparse_conv2d_input_grad(
                grad.clone(),
                weight.clone(),
                saved.col_start,
                saved.col_entries,
                saved.geometry,
            );
            grads.register::<B>(node.id, dx);
        }
        if let Some(node) = node_weight {
            let dw = match saved.geometry.weight_grad {
                WeightGrad::Active => B::sparse_conv2d_weight_grad(
                    x,
                    grad,
                    saved.row_start,
                    saved.row_entries,
                    saved.geometry,
                ),
                WeightGrad::Dense => dense_weight_grad::<B>(x, weight, grad, &saved.geometry),
            };
            grads.register::<B>(node.id, dw);
        }
    }
}

impl<B: Backend + SparseConvBackend, C: CheckpointStrategy> SparseConvBackend for Autodiff<B, C> {
    fn sparse_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        row_start: IntTensor<Self>,
        row_entries: IntTensor<Self>,
        col_start: IntTensor<Self>,
        col_entries: IntTensor<Self>,
        geometry: ConvGeometry,
    ) -> FloatTensor<Self> {
        let forward =
            |x, w, rs: &IntTensor<B>, re: &IntTensor<B>, cs: &IntTensor<B>, ce: &IntTensor<B>| {
                B::sparse_conv2d(
                    x,
                    w,
                    rs.clone(),
                    re.clone(),
                    cs.clone(),
                    ce.clone(),
                    geometry,
                )
            };
        match SparseConvBackward
            .prepare::<C>([x.node(), weight.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let x_state = prep.checkpoint(&x);
                let weight_state = prep.checkpoint(&weight);
                let out = forward(
                    x.into_primitive(),
                    weight.into_primitive(),
                    &row_start,
                    &row_entries,
                    &col_start,
                    &col_entries,
                );
                let saved = SavedIndex {
                    row_start,
                    row_entries,
                    col_start,
                    col_entries,
                    geometry,
                };
                prep.finish((x_state, weight_state, saved), out)
            }
            OpsKind::UnTracked(prep) => prep.finish(forward(
                x.into_primitive(),
                weight.into_primitive(),
                &row_start,
                &row_entries,
                &col_start,
                &col_entries,
            )),
        }
    }

    fn sparse_conv2d_input_grad(
        grad_out: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        col_start: IntTensor<Self>,
        col_entries: IntTensor<Self>,
        geometry: ConvGeometry,
    ) -> FloatTensor<Self> {
        // Gradient kernels are not themselves differentiated.
        <Self as AutodiffBackend>::from_inner(B::sparse_conv2d_input_grad(
            grad_out.into_primitive(),
            weight.into_primitive(),
            col_start,
            col_entries,
            geometry,
        ))
    }

    fn sparse_conv2d_weight_grad(
        x: FloatTensor<Self>,
        grad_out: FloatTensor<Self>,
        row_start: IntTensor<Self>,
        row_entries: IntTensor<Self>,
        geometry: ConvGeometry,
    ) -> FloatTensor<Self> {
        <Self as AutodiffBackend>::from_inner(B::sparse_conv2d_weight_grad(
            x.into_primitive(),
            grad_out.into_primitive(),
            row_start,
            row_entries,
            geometry,
        ))
    }
}
