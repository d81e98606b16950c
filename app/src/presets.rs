//! Named runs one click away: each preset is a link (the URL-hash settings) plus a line
//! saying what it shows. Applying one keeps the page's own choices (the data loaded, the
//! device, hidden controls) and replaces the run's settings.

use crate::settings::Settings;

#[derive(Clone, Copy, Debug)]
pub struct Preset {
    /// The button's element id (`preset-…`) and the name in the docs.
    pub id: &'static str,
    pub title: &'static str,
    /// What the run shows and what to look at.
    pub summary: &'static str,
    /// The run's settings as a link hash; what it leaves out keeps the page's defaults.
    pub link: &'static str,
}

/// The paper's regime first. ResNet-34 at 99.9% keeps about 21,000 of 21 million weights,
/// and `run.kernels = "sparse"` puts every layer on the sparse kernels, on WebGPU too,
/// whose crossover table has no hardware rows yet. At 99.9% every layer's ERK density is
/// below the crossover the kernel lab measured on Flex (the lowest, 0.5%, is ResNet-34's
/// strided 512x256 convolution), and on lavapipe sparse won every layer shape at 99%. Clipping the gradient
/// norm at 1, as the paper's recipe does, keeps these batch-32 runs from diverging early.
pub const PRESETS: &[Preset] = &[
    Preset {
        id: "east-resnet34-999",
        title: "EAST, ResNet-34, 99.9%",
        summary: "The EAST paper's setting: 21,000 of 21 million weights alive, every \
                  convolution on the sparse kernels. Watch the loss fall and the masks move.",
        link: "model=resnet34&width=1&method=east&sparsity=0.999&batch=32&epochs=4&update_every=20&x.optim.clip_norm=1&x.run.kernels=sparse",
    },
    Preset {
        id: "rigl-resnet34-999",
        title: "RigL, ResNet-34, 99.9%",
        summary: "The same network and budget with RigL alone (no DyReLU, sharing or cycles): \
                  keep the EAST run and compare.",
        link: "model=resnet34&width=1&method=rigl&sparsity=0.999&batch=32&epochs=4&update_every=20&x.optim.clip_norm=1&x.run.kernels=sparse",
    },
    Preset {
        id: "east-resnet18-999",
        title: "EAST, ResNet-18, 99.9%",
        summary: "A shallower ImageNet-style ResNet at the same sparsity: 11 million weights, \
                  about 11,000 alive.",
        link: "model=resnet18&width=1&method=east&sparsity=0.999&batch=32&epochs=4&update_every=20&x.optim.clip_norm=1&x.run.kernels=sparse",
    },
    Preset {
        id: "small",
        title: "Small and quick: ResNet-20 ×0.25, 90%",
        summary: "The page's default run: EAST on a small CIFAR ResNet, 1,700 of 17,000 \
                  weights alive, that learns the synthetic shapes within a minute.",
        link: "",
    },
];

/// Lessons for a lecture: each a sequence of runs on one budget (`then=`), kept side by
/// side, and a line saying what to look at. All but the collapse lesson run the default
/// ResNet-20 ×0.25 on the synthetic shapes, a minute or two on a laptop CPU; what each
/// says was measured on those runs (and is checked by the page's end-to-end tests).
pub const LESSONS: &[Preset] = &[
    Preset {
        id: "what-sparsity-is",
        title: "What sparsity is: dense, 90%, 99%",
        summary: "One network three times on the same images: dense, then with 90% of its \
                  weights removed at random, then 99%. Compare the kept runs in the loss and \
                  accuracy charts: 90% (1,700 weights) still learns; at 99% (171 weights) the \
                  loss stays near chance. The density bars show what is left of each layer.",
        link: "method=dense&sparsity=0&then=method:static,sparsity:0.9;sparsity:0.99",
    },
    Preset {
        id: "erk-vs-uniform",
        title: "ERK vs uniform at 97%",
        summary: "The same 514 weights spread two ways. Uniform gives every layer 3%, so the \
                  3-channel stem keeps 3 weights; ERK gives thin layers (the stem, the \
                  classifier) more and wide ones less. Watch the density bars change between \
                  the runs, and ERK's run learn where uniform's stays near chance.",
        link: "method=static&sparsity=0.97&distribution=uniform&then=distribution:erk",
    },
    Preset {
        id: "rigl-prune-regrow",
        title: "RigL: prune and regrow",
        summary: "Every 20 steps RigL removes its weakest active weights (red in the mask \
                  heatmaps) and regrows as many where the gradient is largest (blue): the masks \
                  move, each layer keeps its count. The share it moves shrinks over training, \
                  and it stops moving for the last quarter.",
        link: "method=rigl&sparsity=0.9&update_every=20",
    },
    Preset {
        id: "rigl-vs-east-resnet34-9999",
        title: "At 99.99% RigL's network falls apart, EAST's stays connected (ResNet-34)",
        summary: "2,127 of 21 million weights alive. RigL runs first: almost none of its \
                  weights lie on a path from the input to the output (the count under the \
                  status line), so its loss stays at chance (ln 10). Then EAST on the same \
                  budget, whose weight sharing and cycles keep far more weights on a path. \
                  Both stay on the charts to compare. In two short epochs neither beats \
                  chance in accuracy: that takes longer runs on real images (the book's \
                  headline grid).",
        link: "model=resnet34&width=1&method=rigl&sparsity=0.9999&batch=32&epochs=2&update_every=20&x.optim.clip_norm=1&x.run.kernels=sparse&then=method:east",
    },
    Preset {
        id: "sculpt-cycles",
        title: "SCULPT-ing: cycles, one prune, one more cycle",
        summary: "SCULPT trains at 30% density (10× the target) for two cycles, each \
                  restarting the learning rate (the LR chart), then prunes once by magnitude to \
                  3% (the density chart drops tenfold, the heatmaps turn red) and trains one \
                  more cycle. The accuracy falls at the prune; the last cycle is there to win \
                  some of it back.",
        link: "method=sculpt&sparsity=0.97&epochs=6&schedule=linear&x.schedule.warmup_epochs=0.2&x.schedule.warmup_start=0&x.method.sculpt.cycles=2",
    },
];

impl Preset {
    /// A preset or a lesson by its id.
    pub fn find(id: &str) -> Option<&'static Preset> {
        PRESETS.iter().chain(LESSONS).find(|p| p.id == id)
    }

    /// `current` with this preset's run settings: the data source, device, hidden controls
    /// and autoplay stay as they are.
    pub fn apply(&self, current: &Settings) -> Result<Settings, String> {
        let run =
            Settings::from_hash(self.link).map_err(|e| format!("preset {}: {e}", self.title))?;
        Ok(Settings {
            data: current.data.clone(),
            data_url: current.data_url.clone(),
            synthetic_size: current.synthetic_size,
            limit: current.limit,
            backend: current.backend,
            autoplay: current.autoplay,
            hide: current.hide.clone(),
            ..run
        })
    }

    /// Whether `settings` run this preset (the menu marks the current one).
    pub fn matches(&self, settings: &Settings) -> bool {
        self.apply(settings).is_ok_and(|s| &s == settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sparselab::kernels::choice::KernelMode;

    #[test]
    fn every_preset_is_a_valid_run() {
        for p in PRESETS.iter().chain(LESSONS) {
            let s = p.apply(&Settings::default()).unwrap();
            let c = s.to_config().unwrap_or_else(|e| panic!("{}: {e}", p.id));
            assert!(p.matches(&s), "{}", p.id);
            assert!(Preset::find(p.id).is_some());
            if p.title.contains("99.9%") {
                assert_eq!(c.sparsity.sparsity, 0.999, "{}", p.id);
                assert_eq!(c.run.kernels, KernelMode::Sparse, "{}", p.id);
            }
            // Every run of a sequence is valid too.
            let mut next = s.next_in_sequence();
            while let Some(n) = next {
                n.to_config()
                    .unwrap_or_else(|e| panic!("{} then: {e}", p.id));
                next = n.next_in_sequence();
            }
        }
        let ids: std::collections::BTreeSet<_> =
            PRESETS.iter().chain(LESSONS).map(|p| p.id).collect();
        assert_eq!(
            ids.len(),
            PRESETS.len() + LESSONS.len(),
            "preset and lesson ids are unique"
        );
    }

    #[test]
    fn the_collapse_lesson_runs_rigl_then_east_on_one_budget() {
        let s = Preset::find("rigl-vs-east-resnet34-9999")
            .unwrap()
            .apply(&Settings::default())
            .unwrap();
        let east = s.next_in_sequence().unwrap();
        assert_eq!((s.method.as_str(), east.method.as_str()), ("rigl", "east"));
        assert_eq!(s.to_config().unwrap().sparsity.sparsity, 0.9999);
        // Only the method differs between the two runs.
        assert_eq!(
            Settings {
                method: "rigl".into(),
                then: s.then.clone(),
                ..east
            },
            s
        );
    }

    /// A lesson's runs: its settings, then each run of its sequence.
    fn runs(id: &str) -> Vec<Settings> {
        let mut out = vec![
            Preset::find(id)
                .unwrap()
                .apply(&Settings::default())
                .unwrap(),
        ];
        while let Some(next) = out.last().unwrap().next_in_sequence() {
            out.push(next);
        }
        out
    }

    #[test]
    fn each_lesson_varies_only_what_it_teaches() {
        let sparsity = |r: &[Settings]| r.iter().map(|s| s.sparsity).collect::<Vec<_>>();
        let basics = runs("what-sparsity-is");
        assert_eq!(sparsity(&basics), [0.0, 0.9, 0.99]);
        assert_eq!(basics[0].method, "dense");
        assert!(basics[1..].iter().all(|s| s.method == "static"));
        let spread = runs("erk-vs-uniform");
        assert_eq!(sparsity(&spread), [0.97, 0.97]);
        let spread: Vec<_> = spread.iter().map(|s| s.distribution.as_str()).collect();
        assert_eq!(spread, ["uniform", "erk"]);
        for id in [
            "what-sparsity-is",
            "erk-vs-uniform",
            "rigl-prune-regrow",
            "sculpt-cycles",
        ] {
            // The default network: quick on a laptop CPU.
            let r = runs(id);
            assert!(
                r.iter().all(|s| s.model == "resnet20" && s.width == 0.25),
                "{id}"
            );
        }
        // SCULPT's two cycles at 10x the 3% target, then the prune and one more cycle.
        let sculpt = runs("sculpt-cycles")[0].to_config().unwrap();
        let c: sparselab::methods::sculpt::SculptConfig =
            sculpt.method.tables.get("sculpt").unwrap();
        assert_eq!(c.cycles, 2);
        assert!((c.start_density_multiple * (1.0 - sculpt.sparsity.sparsity) - 0.3).abs() < 1e-9);
    }

    #[test]
    fn a_preset_keeps_the_pages_data_and_device() {
        let mut mine =
            Settings::from_hash("data=cifar10&limit=500&backend=cpu&hide=seed&lr=0.3").unwrap();
        mine.data_url = Some("https://example.org/c.tar.gz".into());
        let p = Preset::find("east-resnet34-999").unwrap();
        let s = p.apply(&mine).unwrap();
        assert_eq!(
            (s.data.as_str(), s.limit, s.backend, s.data_url.as_deref()),
            ("cifar10", 500, mine.backend, mine.data_url.as_deref())
        );
        assert!(s.hide.contains("seed"));
        assert_eq!((s.model.as_str(), s.method.as_str()), ("resnet34", "east"));
        // The run's own settings come from the preset, not from the page.
        assert_eq!(s.lr, Settings::default().lr);
        assert!(!p.matches(&mine));
    }
}
