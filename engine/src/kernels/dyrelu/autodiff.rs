//! Autodiff: `dyrelu_apply`'s backward pass is the two gradient loops, `plane_means`' is
//! `plane_means_grad`.

use super::FusedDyReluBackend;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::{Autodiff, NodeId};
use burn::backend::{AutodiffBackend, Backend, TensorMetadata, tensor::FloatTensor};

#[derive(Debug)]
struct DyReluBackward;

impl<B: Backend + FusedDyReluBackend> Backward<B, 2> for DyReluBackward {
    /// x and the coefficients (checkpointed).
    type State = (NodeId, NodeId);

    fn backward(
        self,
        ops: Ops<Self::State, 2>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_coef] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (x_state, coef_state) = ops.state;
        let x = checkpointer.retrieve_node_output::<FloatTensor<B>>(x_state);
        let coef = checkpointer.retrieve_node_output::<FloatTensor<B>>(coef_state);
        if let Some(node) = node_coef {
            let dc = B::dyrelu_coef_grad(x.clone(), coef.clone(), grad.clone());
            grads.register::<B>(node.id, dc);
        }
        if let Some(node) = node_x {
            grads.register::<B>(node.id, B::dyrelu_input_grad(x, coef, grad));
        }
    }
}

#[derive(Debug)]
struct PlaneMeansBackward;

impl<B: Backend + FusedDyReluBackend> Backward<B, 1> for PlaneMeansBackward {
    /// The planes' height and width.
    type State = (usize, usize);

    fn backward(
        self,
        ops: Ops<Self::State, 1>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let [node_x] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (height, width) = ops.state;
        if let Some(node) = node_x {
            grads.register::<B>(node.id, B::plane_means_grad(grad, height, width));
        }
    }
}

impl<B: Backend + FusedDyReluBackend, C: CheckpointStrategy> FusedDyReluBackend for Autodiff<B, C> {
    fn dyrelu_apply(x: FloatTensor<Self>, coef: FloatTensor<Self>) -> FloatTensor<Self> {
        match DyReluBackward
            .prepare::<C>([x.node(), coef.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let x_state = prep.checkpoint(&x);
                let coef_state = prep.checkpoint(&coef);
                let out = B::dyrelu_apply(x.into_primitive(), coef.into_primitive());
                prep.finish((x_state, coef_state), out)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(B::dyrelu_apply(x.into_primitive(), coef.into_primitive()))
            }
        }
    }

    // The gradient loops are not themselves differentiated.
    fn dyrelu_input_grad(
        x: FloatTensor<Self>,
        coef: FloatTensor<Self>,
        grad_out: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        <Self as AutodiffBackend>::from_inner(B::dyrelu_input_grad(
            x.into_primitive(),
            coef.into_primitive(),
            grad_out.into_primitive(),
        ))
    }

    fn dyrelu_coef_grad(
        x: FloatTensor<Self>,
        coef: FloatTensor<Self>,
        grad_out: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        <Self as AutodiffBackend>::from_inner(B::dyrelu_coef_grad(
            x.into_primitive(),
            coef.into_primitive(),
            grad_out.into_primitive(),
        ))
    }

    fn plane_means(x: FloatTensor<Self>) -> FloatTensor<Self> {
        let shape = x.shape();
        match PlaneMeansBackward
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let out = B::plane_means(x.into_primitive());
                prep.finish((shape[2], shape[3]), out)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::plane_means(x.into_primitive())),
        }
    }

    fn plane_means_grad(
        grad_out: FloatTensor<Self>,
        height: usize,
        width: usize,
    ) -> FloatTensor<Self> {
        <Self as AutodiffBackend>::from_inner(B::plane_means_grad(
            grad_out.into_primitive(),
            height,
            width,
        ))
    }
}
