//! Walk every float parameter of a module by its path ("stages.0.blocks.1.conv1.weight"),
//! flattened to 1-D so the caller needs no rank generics.
//!
//! Everything keyed by parameter in sparselab (masks, momentum, checkpoints) is keyed by
//! this path, never by `ParamId`: ids are random per process, paths survive a restart.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::Tensor;

/// A parameter (or running buffer) as seen in a walk.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamInfo {
    pub path: String,
    pub dims: Vec<usize>,
}

impl ParamInfo {
    pub fn numel(&self) -> usize {
        self.dims.iter().product()
    }
}

// Burn 0.22 announces each field and Vec index through enter/exit_module but never calls
// `visit_float_with_path`, so the walkers keep the path stack themselves.
struct Visitor<'a, F: FnMut(&str, &[usize], Tensor<1>)> {
    path: Vec<String>,
    f: &'a mut F,
}

impl<F: FnMut(&str, &[usize], Tensor<1>)> ModuleVisitor for Visitor<'_, F> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let tensor = param.val();
        let dims = tensor.dims().to_vec();
        let n = dims.iter().product::<usize>();
        (self.f)(&self.path.join("."), &dims, tensor.inner().reshape([n]));
    }
}

/// Calls `f(path, dims, flat_value)` for every float tensor (parameters and running
/// statistics), in the module's declaration order. Values are detached from autodiff.
pub fn for_each_param<M: Module>(module: &M, mut f: impl FnMut(&str, &[usize], Tensor<1>)) {
    module.visit(&mut Visitor {
        path: Vec::new(),
        f: &mut f,
    });
}

/// Paths and shapes of every float tensor in the module.
pub fn param_infos<M: Module>(module: &M) -> Vec<ParamInfo> {
    let mut out = Vec::new();
    for_each_param(module, |path, dims, _| {
        out.push(ParamInfo {
            path: path.to_string(),
            dims: dims.to_vec(),
        })
    });
    out
}

struct Mapper<'a, F: FnMut(&str, Tensor<1>) -> Tensor<1>> {
    path: Vec<String>,
    f: &'a mut F,
}

impl<F: FnMut(&str, Tensor<1>) -> Tensor<1>> ModuleMapper for Mapper<'_, F> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let (id, tensor, mapper) = param.consume();
        let dims: [usize; D] = tensor.dims();
        let was_autodiff = tensor.is_autodiff();
        let required_grad = tensor.is_require_grad();
        let n = dims.iter().product::<usize>();
        let out = (self.f)(&self.path.join("."), tensor.inner().reshape([n]));
        let mut out: Tensor<D> = out.reshape(dims);
        // Updated parameters are fresh leaves: re-enter autodiff and keep requiring grads.
        if was_autodiff {
            out = out.autodiff();
            if required_grad {
                out = out.require_grad();
            }
        }
        Param::from_mapped_value(id, out, mapper)
    }
}

/// Rebuilds the module with `f(path, flat_value) -> new_flat_value` applied to every float
/// tensor. `f` must return a tensor of the same length.
pub fn map_params<M: Module>(module: M, mut f: impl FnMut(&str, Tensor<1>) -> Tensor<1>) -> M {
    module.map(&mut Mapper {
        path: Vec::new(),
        f: &mut f,
    })
}

struct GradCollector<'a> {
    path: Vec<String>,
    grads: &'a burn::optim::GradientsParams,
    out: Vec<(String, Tensor<1>)>,
}

impl ModuleVisitor for GradCollector<'_> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.get::<D>(param.id) {
            let n = g.dims().iter().product::<usize>();
            self.out.push((self.path.join("."), g.inner().reshape([n])));
        }
    }
}

/// The gradient of every parameter that has one, flattened, keyed by path.
pub fn grads_by_path<M: Module>(
    module: &M,
    grads: &burn::optim::GradientsParams,
) -> Vec<(String, Tensor<1>)> {
    let mut collector = GradCollector {
        path: Vec::new(),
        grads,
        out: Vec::new(),
    };
    module.visit(&mut collector);
    collector.out
}
