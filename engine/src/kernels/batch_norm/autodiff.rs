//! Autodiff: `norm_apply`'s backward pass is the two gradient loops; the statistics are a
//! constant input, since the input gradient formula already goes through them.

use super::FusedNormBackend;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::{Autodiff, NodeId};
use burn::backend::{AutodiffBackend, Backend, TensorMetadata, tensor::FloatTensor};
use burn::tensor::{Shape, Slice};

#[derive(Debug)]
struct NormBackward;

impl<B: Backend + FusedNormBackend> Backward<B, 3> for NormBackward {
    /// x and gamma (checkpointed), the statistics, epsilon.
    type State = (NodeId, NodeId, FloatTensor<B>, f64);

    fn backward(
        self,
        ops: Ops<Self::State, 3>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_gamma, node_beta] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (x_state, gamma_state, stats, epsilon) = ops.state;
        let x = checkpointer.retrieve_node_output::<FloatTensor<B>>(x_state);
        let gamma = checkpointer.retrieve_node_output::<FloatTensor<B>>(gamma_state);
        let channels = gamma.shape()[0];
        let param_grads = B::norm_param_grads(x.clone(), stats.clone(), grad.clone(), epsilon);
        let row = |r: isize| {
            let rows = Slice {
                start: r,
                end: Some(r + 1),
                step: 1,
            };
            let all = Slice {
                start: 0,
                end: Some(channels as isize),
                step: 1,
            };
            B::float_reshape(
                B::float_slice(param_grads.clone(), &[rows, all]),
                Shape::new([channels]),
            )
        };
        if let Some(node) = node_gamma {
            grads.register::<B>(node.id, row(0));
        }
        if let Some(node) = node_beta {
            grads.register::<B>(node.id, row(1));
        }
        if let Some(node) = node_x {
            let dx = B::norm_input_grad(x, stats, gamma, grad, param_grads, epsilon);
            grads.register::<B>(node.id, dx);
        }
    }
}

impl<B: Backend + FusedNormBackend, C: CheckpointStrategy> FusedNormBackend for Autodiff<B, C> {
    fn norm_stats(x: FloatTensor<Self>) -> FloatTensor<Self> {
        <Self as AutodiffBackend>::from_inner(B::norm_stats(x.into_primitive()))
    }

    fn norm_apply(
        x: FloatTensor<Self>,
        stats: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
    ) -> FloatTensor<Self> {
        let stats = stats.into_primitive();
        match NormBackward
            .prepare::<C>([x.node(), gamma.node(), beta.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let x_state = prep.checkpoint(&x);
                let gamma_state = prep.checkpoint(&gamma);
                let out = B::norm_apply(
                    x.into_primitive(),
                    stats.clone(),
                    gamma.into_primitive(),
                    beta.into_primitive(),
                    epsilon,
                );
                prep.finish((x_state, gamma_state, stats, epsilon), out)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::norm_apply(
                x.into_primitive(),
                stats,
                gamma.into_primitive(),
                beta.into_primitive(),
                epsilon,
            )),
        }
    }

    // The gradient loops are not themselves differentiated.
    fn norm_param_grads(
        x: FloatTensor<Self>,
        stats: FloatTensor<Self>,
        grad_out: FloatTensor<Self>,
        epsilon: f64,
    ) -> FloatTensor<Self> {
        <Self as AutodiffBackend>::from_inner(B::norm_param_grads(
            x.into_primitive(),
            stats.into_primitive(),
            grad_out.into_primitive(),
            epsilon,
        ))
    }

    fn norm_input_grad(
        x: FloatTensor<Self>,
        stats: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        grad_out: FloatTensor<Self>,
        param_grads: FloatTensor<Self>,
        epsilon: f64,
    ) -> FloatTensor<Self> {
        <Self as AutodiffBackend>::from_inner(B::norm_input_grad(
            x.into_primitive(),
            stats.into_primitive(),
            gamma.into_primitive(),
            grad_out.into_primitive(),
            param_grads.into_primitive(),
            epsilon,
        ))
    }
}
