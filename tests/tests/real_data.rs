//! The real CIFAR-10 training images from `../shared/data/` (skipped when absent).

use sparselab::data::{DataConfig, DataKind, TrainValSplit, load_split};
use sparselab_e2e::shared_data;

#[test]
fn shared_cifar10_jpg_tarball_loads_whole_and_balanced() {
    let Some(path) = shared_data("cifar10-train-jpg.tar.gz") else {
        return;
    };
    let config = DataConfig {
        kind: DataKind::Folder,
        path: Some(path),
        ..Default::default()
    };
    let start = std::time::Instant::now();
    let set = load_split(&config, false, 0).unwrap();
    eprintln!(
        "decoded {} images in {:.1} s",
        set.len(),
        start.elapsed().as_secs_f64()
    );
    assert_eq!(set.len(), 50_000);
    assert_eq!(
        set.class_names,
        [
            "airplane",
            "automobile",
            "bird",
            "cat",
            "deer",
            "dog",
            "frog",
            "horse",
            "ship",
            "truck"
        ]
    );
    assert!(set.class_counts().iter().all(|&n| n == 5_000));
    // Real photos: mean pixel near CIFAR-10's (about 0.47 of full scale), wide spread.
    let mean = set.images.iter().map(|&p| p as f64).sum::<f64>() / set.images.len() as f64 / 255.0;
    assert!((0.42..0.52).contains(&mean), "mean {mean}");
    // The held-out split used for every reported accuracy: 5,000 images, 500 per class.
    let split = TrainValSplit::new(&set, 0.1, 0);
    assert_eq!(split.val.len(), 5_000);
    // There is no test split in this archive: asking for one is an error, not the train set.
    assert!(load_split(&config, true, 0).is_err());
}
