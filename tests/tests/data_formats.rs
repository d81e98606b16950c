//! CIFAR binary and image-folder parsing on files generated in the official layouts,
//! corrupt and truncated files, and fetch's verify/extract path.

use sparselab::data::cifar_binary::{self, Cifar, Split, encode_records};
use sparselab::data::{DataConfig, DataKind, IMAGE_BYTES, image_folder, load_split};
use sparselab_e2e::write_tar_gz;

/// Images whose pixels encode their index, so order and content can be checked.
fn images(n: usize) -> Vec<u8> {
    (0..n)
        .flat_map(|i| (0..IMAGE_BYTES).map(move |p| ((i * 31 + p) % 251) as u8))
        .collect()
}

fn cifar10_tarball(dir: &std::path::Path, per_batch: usize) -> std::path::PathBuf {
    let mut files = Vec::new();
    for b in 1..=5 {
        let labels: Vec<u8> = (0..per_batch).map(|i| ((i + b) % 10) as u8).collect();
        files.push((
            format!("cifar-10-batches-bin/data_batch_{b}.bin"),
            encode_records(Cifar::Ten, &images(per_batch), &labels, &[]),
        ));
    }
    let labels: Vec<u8> = (0..per_batch).map(|i| (i % 10) as u8).collect();
    files.push((
        "cifar-10-batches-bin/test_batch.bin".into(),
        encode_records(Cifar::Ten, &images(per_batch), &labels, &[]),
    ));
    let names = "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n";
    files.push((
        "cifar-10-batches-bin/batches.meta.txt".into(),
        names.as_bytes().to_vec(),
    ));
    let p = dir.join("cifar-10-binary.tar.gz");
    write_tar_gz(&p, &files);
    p
}

#[test]
fn cifar10_reads_from_tarball_and_from_folder() {
    let dir = tempfile::tempdir().unwrap();
    let tgz = cifar10_tarball(dir.path(), 20);
    let train = cifar_binary::load(&tgz, Cifar::Ten, Split::Train).unwrap();
    assert_eq!(train.len(), 100);
    assert_eq!(train.class_names[9], "truck");
    assert_eq!(train.labels[0], 1); // batch 1, image 0
    assert_eq!(train.image(0), &images(1)[..]);
    let test = cifar_binary::load(&tgz, Cifar::Ten, Split::Test).unwrap();
    assert_eq!(test.len(), 20);

    // The same data extracted: the folder form reads identically.
    let out = dir.path().join("x");
    std::fs::create_dir_all(&out).unwrap();
    let file = std::fs::File::open(&tgz).unwrap();
    tar::Archive::new(flate2::read::GzDecoder::new(file))
        .unpack(&out)
        .unwrap();
    let from_dir = cifar_binary::load(&out, Cifar::Ten, Split::Train).unwrap();
    assert_eq!(from_dir.labels, train.labels);
    assert_eq!(from_dir.images, train.images);
}

#[test]
fn cifar100_fine_and_coarse_from_tarball() {
    let dir = tempfile::tempdir().unwrap();
    let fine: Vec<u8> = (0..30).map(|i| (i * 3 % 100) as u8).collect();
    let coarse: Vec<u8> = (0..30).map(|i| (i % 20) as u8).collect();
    let fine_names: String = (0..100).map(|i| format!("f{i}\n")).collect();
    let p = dir.path().join("c100.tar.gz");
    write_tar_gz(
        &p,
        &[
            (
                "cifar-100-binary/train.bin".into(),
                encode_records(Cifar::HundredFine, &images(30), &fine, &coarse),
            ),
            (
                "cifar-100-binary/test.bin".into(),
                encode_records(Cifar::HundredFine, &images(5), &fine[..5], &coarse[..5]),
            ),
            (
                "cifar-100-binary/fine_label_names.txt".into(),
                fine_names.into_bytes(),
            ),
        ],
    );
    let f = cifar_binary::load(&p, Cifar::HundredFine, Split::Train).unwrap();
    assert_eq!(f.num_classes(), 100);
    assert_eq!(f.labels.iter().map(|&l| l as u8).collect::<Vec<_>>(), fine);
    assert_eq!(f.class_names[7], "f7");
    let c = cifar_binary::load(&p, Cifar::HundredCoarse, Split::Train).unwrap();
    assert_eq!(c.num_classes(), 20);
    assert_eq!(
        c.labels.iter().map(|&l| l as u8).collect::<Vec<_>>(),
        coarse
    );
}

#[test]
fn truncated_and_corrupt_files_give_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let tgz = cifar10_tarball(dir.path(), 10);
    // Cut the gzip stream short.
    let bytes = std::fs::read(&tgz).unwrap();
    let cut = dir.path().join("cut.tar.gz");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let err = cifar_binary::load(&cut, Cifar::Ten, Split::Train)
        .unwrap_err()
        .to_string();
    assert!(err.contains("cut.tar.gz"), "{err}");

    // A batch file with a partial record.
    let folder = dir.path().join("cifar-10-batches-bin");
    std::fs::create_dir_all(&folder).unwrap();
    for b in 1..=5 {
        let rec = encode_records(Cifar::Ten, &images(3), &[1, 2, 3], &[]);
        let len = if b == 3 { rec.len() - 100 } else { rec.len() };
        std::fs::write(folder.join(format!("data_batch_{b}.bin")), &rec[..len]).unwrap();
    }
    let err = cifar_binary::load(dir.path(), Cifar::Ten, Split::Train)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("data_batch_3.bin") && err.contains("truncated"),
        "{err}"
    );

    // Not a dataset at all.
    let junk = dir.path().join("junk.tar.gz");
    std::fs::write(&junk, b"hello").unwrap();
    let err = cifar_binary::load(&junk, Cifar::Ten, Split::Train)
        .unwrap_err()
        .to_string();
    assert!(err.contains("junk.tar.gz"), "{err}");

    // A tarball with the wrong content says what it expected.
    let other = dir.path().join("other.tar.gz");
    write_tar_gz(&other, &[("readme.txt".into(), b"hi".to_vec())]);
    let err = cifar_binary::load(&other, Cifar::Ten, Split::Train)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("data_batch_1.bin") && err.contains("data fetch"),
        "{err}"
    );
}

fn png(color: [u8; 3], size: u32) -> Vec<u8> {
    let img = image::RgbImage::from_pixel(size, size, image::Rgb(color));
    let mut out = Vec::new();
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .unwrap();
    out
}

fn jpg(color: [u8; 3]) -> Vec<u8> {
    let img = image::RgbImage::from_pixel(32, 32, image::Rgb(color));
    let mut out = Vec::new();
    image::DynamicImage::ImageRgb8(img)
        .write_to(
            &mut std::io::Cursor::new(&mut out),
            image::ImageFormat::Jpeg,
        )
        .unwrap();
    out
}

#[test]
fn image_folder_from_tarball_and_directory() {
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for (c, color) in [
        ("cat", [250, 0, 0]),
        ("dog", [0, 250, 0]),
        ("ant", [0, 0, 250]),
    ] {
        for i in 0..4 {
            files.push((format!("train/{c}/{i:04}.jpg"), jpg(color)));
        }
        files.push((format!("test/{c}/0000.png"), png(color, 64)));
    }
    let tgz = dir.path().join("imgs.tar.gz");
    write_tar_gz(&tgz, &files);
    let train = image_folder::load(&tgz, Some("train"), false).unwrap();
    assert_eq!(train.class_names, vec!["ant", "cat", "dog"]);
    assert_eq!(train.len(), 12);
    assert_eq!(train.class_counts(), vec![4, 4, 4]);
    // "ant" images are blue: channel 2 bright, channel 0 dark (JPEG-approximately).
    let ant = train.image(0);
    assert!(
        ant[2 * 1024] > 200 && ant[0] < 40,
        "{} {}",
        ant[2 * 1024],
        ant[0]
    );
    let test = image_folder::load(&tgz, Some("test"), true).unwrap();
    assert_eq!(test.len(), 3); // resized from 64x64

    // A plain directory with no split folders; a test split is then an error.
    let root = dir.path().join("plain");
    for c in ["a", "b"] {
        std::fs::create_dir_all(root.join(c)).unwrap();
        std::fs::write(root.join(c).join("x.png"), png([1, 2, 3], 32)).unwrap();
    }
    assert_eq!(
        image_folder::load(&root, Some("train"), false)
            .unwrap()
            .len(),
        2
    );
    let err = image_folder::load(&root, Some("test"), true)
        .unwrap_err()
        .to_string();
    assert!(err.contains("test"), "{err}");
}

#[test]
fn corrupt_image_in_folder_names_the_entry() {
    let dir = tempfile::tempdir().unwrap();
    let tgz = dir.path().join("bad.tar.gz");
    write_tar_gz(
        &tgz,
        &[
            ("train/a/0.jpg".into(), jpg([1, 1, 1])),
            ("train/b/7.jpg".into(), b"\xff\xd8\xff garbage".to_vec()),
        ],
    );
    let err = image_folder::load(&tgz, None, false)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("train/b/7.jpg") && err.contains("not a readable image"),
        "{err}"
    );
}

#[test]
fn data_config_errors_name_the_key() {
    let c = DataConfig {
        kind: DataKind::Cifar10,
        path: Some("/nonexistent/cifar.tar.gz".into()),
        ..Default::default()
    };
    let err = load_split(&c, false, 0).unwrap_err().to_string();
    assert!(
        err.contains("data.path") && err.contains("data fetch cifar10"),
        "{err}"
    );
}

#[test]
fn fetch_verifies_checksum_and_extracts() {
    use sparselab::data::fetch::{md5_file, verify_and_extract};
    let dir = tempfile::tempdir().unwrap();
    let tgz = cifar10_tarball(dir.path(), 10);
    let good = md5_file(&tgz).unwrap();
    let to = dir.path().join("out");
    let folder = verify_and_extract(&tgz, &good, &to, "cifar-10-batches-bin").unwrap();
    assert!(folder.join("data_batch_5.bin").is_file());
    assert_eq!(
        cifar_binary::load(&folder, Cifar::Ten, Split::Train)
            .unwrap()
            .len(),
        50
    );

    let err = verify_and_extract(
        &tgz,
        "00000000000000000000000000000000",
        &to,
        "cifar-10-batches-bin",
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("MD5") && err.contains("fetch again"), "{err}");
}

#[test]
fn failed_download_is_a_clear_error_and_leaves_no_file() {
    use sparselab::data::fetch::{CIFAR10, fetch};
    let dir = tempfile::tempdir().unwrap();
    // Port 9 (discard) on loopback: nothing listens, the connection is refused at once.
    let err = fetch(
        &CIFAR10,
        dir.path(),
        Some("http://127.0.0.1:9/cifar-10-binary.tar.gz"),
        false,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("download") && err.contains("by hand"), "{err}");
    assert!(!dir.path().join("cifar-10-binary.tar.gz").exists());
}
