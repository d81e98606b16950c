//! Autodiff: `norm_apply`'s backward pass is the two gradient loops; the statistics are a
//! constant input, since the input gradient formula already goes through them. The ReLU,
//! if any, is undone inside those loops from x, gamma and beta.

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
    /// x, gamma and beta (checkpointed), the statistics, epsilon, whether a ReLU follows.
    type State = (NodeId, NodeId, NodeId, FloatTensor<B>, f64, bool);

    fn backward(
        self,
        ops: Ops<Self::State, 3>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_gamma, node_beta] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (x_state, gamma_state, beta_state, stats, epsilon, relu) = ops.state;
        let states = [x_state, gamma_state, beta_state];
        let saved = Saved::<B>::retrieve(checkpointer, states, stats, epsilon);
        let ids = [node_x, node_gamma, node_beta].map(|p| p.map(|n| n.id));
        saved.register(grad, relu, ids, grads);
    }
}

#[derive(Debug)]
struct NormAddReluBackward;

impl<B: Backend + FusedNormBackend> Backward<B, 4> for NormAddReluBackward {
    /// x, gamma, beta and the residual (checkpointed), the statistics, epsilon.
    type State = (NodeId, NodeId, NodeId, NodeId, FloatTensor<B>, f64);

    fn backward(
        self,
        ops: Ops<Self::State, 4>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_gamma, node_beta, node_residual] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (x_state, gamma_state, beta_state, residual_state, stats, epsilon) = ops.state;
        let states = [x_state, gamma_state, beta_state];
        let saved = Saved::<B>::retrieve(checkpointer, states, stats, epsilon);
        let residual = checkpointer.retrieve_node_output::<FloatTensor<B>>(residual_state);
        // The gradient at the sum: the residual's, and the BatchNorm's to go back through.
        let at_sum = B::norm_add_relu_grad(
            saved.x.clone(),
            saved.stats.clone(),
            saved.gamma.clone(),
            saved.beta.clone(),
            residual,
            grad,
            saved.epsilon,
        );
        if let Some(node) = node_residual {
            grads.register::<B>(node.id, at_sum.clone());
        }
        let ids = [node_x, node_gamma, node_beta].map(|p| p.map(|n| n.id));
        saved.register(at_sum, false, ids, grads);
    }
}

/// What a BatchNorm's backward pass reads.
struct Saved<B: Backend> {
    x: FloatTensor<B>,
    gamma: FloatTensor<B>,
    beta: FloatTensor<B>,
    stats: FloatTensor<B>,
    epsilon: f64,
}

impl<B: Backend + FusedNormBackend> Saved<B> {
    /// x, gamma and beta from their checkpointed states.
    fn retrieve(
        checkpointer: &mut Checkpointer,
        [x, gamma, beta]: [NodeId; 3],
        stats: FloatTensor<B>,
        epsilon: f64,
    ) -> Self {
        Self {
            x: checkpointer.retrieve_node_output(x),
            gamma: checkpointer.retrieve_node_output(gamma),
            beta: checkpointer.retrieve_node_output(beta),
            stats,
            epsilon,
        }
    }

    /// Registers the gradients of x, gamma and beta for the output gradient `grad` (of
    /// `relu(bn(x))` with `relu`, else of `bn(x)`).
    fn register(
        self,
        grad: FloatTensor<B>,
        relu: bool,
        [node_x, node_gamma, node_beta]: [Option<NodeId>; 3],
        grads: &mut Gradients,
    ) {
        let Saved {
            x,
            gamma,
            beta,
            stats,
            epsilon,
        } = self;
        let channels = gamma.shape()[0];
        let param_grads = B::norm_param_grads(
            x.clone(),
            stats.clone(),
            gamma.clone(),
            beta.clone(),
            grad.clone(),
            epsilon,
            relu,
        );
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
        if let Some(id) = node_gamma {
            grads.register::<B>(id, row(0));
        }
        if let Some(id) = node_beta {
            grads.register::<B>(id, row(1));
        }
        if let Some(id) = node_x {
            let dx = B::norm_input_grad(x, stats, gamma, beta, grad, param_grads, epsilon, relu);
            grads.register::<B>(id, dx);
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
        relu: bool,
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
                let beta_state = prep.checkpoint(&beta);
                let out = B::norm_apply(
                    x.into_primitive(),
                    stats.clone(),
                    gamma.into_primitive(),
                    beta.into_primitive(),
                    epsilon,
                    relu,
                );
                let state = (x_state, gamma_state, beta_state, stats, epsilon, relu);
                prep.finish(state, out)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::norm_apply(
                x.into_primitive(),
                stats,
                gamma.into_primitive(),
                beta.into_primitive(),
                epsilon,
                relu,
            )),
        }
    }

    // The gradient loops are not themselves differentiated.
    fn norm_param_grads(
        x: FloatTensor<Self>,
        stats: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        grad_out: FloatTensor<Self>,
        epsilon: f64,
        relu: bool,
    ) -> FloatTensor<Self> {
        <Self as AutodiffBackend>::from_inner(B::norm_param_grads(
            x.into_primitive(),
            stats.into_primitive(),
            gamma.into_primitive(),
            beta.into_primitive(),
            grad_out.into_primitive(),
            epsilon,
            relu,
        ))
    }

    fn norm_input_grad(
        x: FloatTensor<Self>,
        stats: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        grad_out: FloatTensor<Self>,
        param_grads: FloatTensor<Self>,
        epsilon: f64,
        relu: bool,
    ) -> FloatTensor<Self> {
        <Self as AutodiffBackend>::from_inner(B::norm_input_grad(
            x.into_primitive(),
            stats.into_primitive(),
            gamma.into_primitive(),
            beta.into_primitive(),
            grad_out.into_primitive(),
            param_grads.into_primitive(),
            epsilon,
            relu,
        ))
    }

    fn norm_apply_add_relu(
        x: FloatTensor<Self>,
        stats: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        residual: FloatTensor<Self>,
        epsilon: f64,
    ) -> FloatTensor<Self> {
        let stats = stats.into_primitive();
        match NormAddReluBackward
            .prepare::<C>([x.node(), gamma.node(), beta.node(), residual.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let x_state = prep.checkpoint(&x);
                let gamma_state = prep.checkpoint(&gamma);
                let beta_state = prep.checkpoint(&beta);
                let residual_state = prep.checkpoint(&residual);
                let out = B::norm_apply_add_relu(
                    x.into_primitive(),
                    stats.clone(),
                    gamma.into_primitive(),
                    beta.into_primitive(),
                    residual.into_primitive(),
                    epsilon,
                );
                let state = (
                    x_state,
                    gamma_state,
                    beta_state,
                    residual_state,
                    stats,
                    epsilon,
                );
                prep.finish(state, out)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::norm_apply_add_relu(
                x.into_primitive(),
                stats,
                gamma.into_primitive(),
                beta.into_primitive(),
                residual.into_primitive(),
                epsilon,
            )),
        }
    }

    fn norm_add_relu_grad(
        x: FloatTensor<Self>,
        stats: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        residual: FloatTensor<Self>,
        grad_out: FloatTensor<Self>,
        epsilon: f64,
    ) -> FloatTensor<Self> {
        <Self as AutodiffBackend>::from_inner(B::norm_add_relu_grad(
            x.into_primitive(),
            stats.into_primitive(),
            gamma.into_primitive(),
            beta.into_primitive(),
            residual.into_primitive(),
            grad_out.into_primitive(),
            epsilon,
        ))
    }
}
