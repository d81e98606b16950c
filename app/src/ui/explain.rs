//! Short explanations of the concepts, shown beside the control or plot they concern.

use leptos::prelude::*;

pub const SPARSITY: &str = "Sparsity is the fraction of prunable weights (convolutions and the classifier) that are exactly zero. At 99.9% only one weight in a thousand is kept; the slider is log-scaled so the extreme range gets room. The density bars and heatmaps count the real masks.";
pub const DISTRIBUTION: &str = "How the kept weights are spread over layers. Uniform gives every layer the same density. ERK (Erdős–Rényi-Kernel) gives each layer a density proportional to (sum of its dims) / (product of its dims): small layers stay denser, the big 3x3 convolutions get sparser, which trains much better at high sparsity.";
pub const DYNAMIC: &str = "Dynamic sparse training keeps the number of weights fixed but moves them: every ΔT steps it prunes the smallest-magnitude active weights and regrows as many elsewhere. SET regrows at random; RigL regrows where the dense gradient is largest. In the heatmaps, red cells were just pruned and blue ones regrown.";
pub const DYRELU: &str = "EAST's first trick: every ReLU starts as DyReLU-B, a piecewise-linear activation whose slopes a tiny network computes from each input. Over training it is blended into a plain ReLU (phase p goes 1 → 0), so the final sparse network has ordinary ReLUs and no extra cost.";
pub const SHARING: &str = "EAST's second trick: inside each residual stage, later blocks reuse the convolution weights of an earlier block (each with its own learnable gain). The sparsity budget is counted over the unshared weights, so the number of learnable parameters stays equal while each kept weight is used more.";
pub const CYCLIC: &str = "EAST's third trick: cyclic sparsity. Before the RigL phase, the density itself moves in cycles (denser, then back to the target) and the mask pattern changes with it: prune by magnitude, regrow by gradient. The dashed line is the planned density; the solid line is the density counted from the masks.";
pub const SCULPT: &str = "SCULPT-ing: train a sparse mask with a cyclic learning rate, then prune once, globally by magnitude, to the target, then train one more cycle. Its LR plot shows the restarts.";
pub const RECIPES: &str = "Sparse networks are under-trained by dense recipes: at high sparsity they need longer schedules. GMP prunes gradually from dense along a cubic ramp; AC/DC alternates dense and sparse phases; LRR prunes a fraction per level and rewinds the LR.";

/// Which explanations concern a run: its method and, for EAST, the tricks switched on.
/// The rest stay one click away under "more" (`MoreExplanations`).
pub fn concerns(topic: &str, method: &str, dyrelu: bool, sharing: bool, cyclic: bool) -> bool {
    let east = method == "east";
    match topic {
        "cyclic" => east && cyclic,
        "dyrelu" => east && dyrelu,
        "sharing" => east && sharing,
        "sculpt" => method == "sculpt",
        "recipes" => matches!(method, "gmp" | "acdc" | "lrr"),
        "dynamic" => matches!(method, "set" | "rigl" | "east"),
        _ => true,
    }
}

/// Every method-specific explanation as (topic, title, text), in the page's order.
pub const TOPICS: &[(&str, &str, &str)] = &[
    ("dynamic", "Prune and regrow (SET, RigL)", DYNAMIC),
    ("dyrelu", "DyReLU phasing (EAST)", DYRELU),
    ("sharing", "Weight sharing (EAST)", SHARING),
    ("cyclic", "Cyclic sparsity (EAST)", CYCLIC),
    ("sculpt", "SCULPT-ing", SCULPT),
    ("recipes", "Recipes: GMP, AC/DC, LRR", RECIPES),
];

/// A collapsible explanation (open by default, so a student sees it beside the plot).
#[component]
pub fn Explain(title: &'static str, text: &'static str) -> impl IntoView {
    view! {
        <details class="explain" open>
            <summary>{title}</summary>
            <p>{text}</p>
        </details>
    }
}
