//! Image folders, `root/<class>/<name>.jpg|png`, from a directory or straight from a
//! `.tar.gz` (such as the shared `cifar10-train-jpg.tar.gz`). The class of an image is the
//! name of the folder that holds it; classes are sorted by name. Images that are not
//! 32x32 are resized to 32x32.

use super::{DataError, IMAGE_BYTES, IMAGE_SIZE, ImageSet, archive};
use std::io::Read;
use std::path::{Path, PathBuf};

fn is_image(path: &Path) -> bool {
    matches!(
        path.extension()
            .and_then(|e| e.to_str())
            .map(|e| e.to_ascii_lowercase())
            .as_deref(),
        Some("jpg" | "jpeg" | "png")
    )
}

/// Loads an image folder. When its paths contain a folder named `subset` (e.g. `train`),
/// only images under such a folder are kept, so one archive can hold several splits;
/// with `require_subset`, a folder without one is an error (never train images as test).
pub fn load(
    path: &Path,
    subset: Option<&str>,
    require_subset: bool,
) -> Result<ImageSet, DataError> {
    let files = if path.is_dir() {
        read_dir_files(path)?
    } else {
        let file = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
        read_tar_gz_files(file, &path.display().to_string())?
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "images".into());
    from_files(
        files,
        &path.display().to_string(),
        name,
        subset,
        require_subset,
    )
}

/// Loads an image folder from the bytes of a `.tar.gz` (the browser hands over the
/// archive the user picked); `origin` names it in errors and becomes the set's name.
pub fn load_tar_gz_bytes(
    bytes: &[u8],
    origin: &str,
    subset: Option<&str>,
    require_subset: bool,
) -> Result<ImageSet, DataError> {
    let files = read_tar_gz_files(bytes, origin)?;
    from_files(files, origin, origin.to_string(), subset, require_subset)
}

fn from_files(
    mut files: Vec<(PathBuf, Vec<u8>)>,
    origin: &str,
    name: String,
    subset: Option<&str>,
    require_subset: bool,
) -> Result<ImageSet, DataError> {
    if let Some(subset) = subset {
        let has_subset = files
            .iter()
            .any(|(p, _)| p.components().any(|c| c.as_os_str() == subset));
        if has_subset {
            files.retain(|(p, _)| p.components().any(|c| c.as_os_str() == subset));
        } else if require_subset {
            return Err(DataError::NoSplit(format!(
                "{origin}: has no '{subset}/' folder, so it has no {subset} split"
            )));
        }
    }
    if files.is_empty() {
        return Err(DataError::Invalid(format!(
            "{origin}: no .jpg or .png images found; expected the layout root/<class>/<image>.jpg"
        )));
    }
    // Sort by path so the order (and so every seeded split) is the same on every machine.
    files.sort_by(|a, b| a.0.cmp(&b.0));
    let class_of = |p: &Path| -> Option<String> {
        p.parent()
            .and_then(|d| d.file_name())
            .map(|n| n.to_string_lossy().into_owned())
    };
    let mut class_names: Vec<String> = files.iter().filter_map(|(p, _)| class_of(p)).collect();
    class_names.sort();
    class_names.dedup();
    if class_names.len() < 2 {
        return Err(DataError::Invalid(format!(
            "{}: found {} class folder(s); an image folder needs one sub-folder per class \
             (root/<class>/<image>.jpg) and at least two classes",
            origin,
            class_names.len()
        )));
    }
    let mut set = ImageSet {
        name,
        images: Vec::with_capacity(files.len() * IMAGE_BYTES),
        labels: Vec::with_capacity(files.len()),
        class_names,
    };
    for (p, bytes) in &files {
        let class = class_of(p).expect("image files have a parent folder");
        let label = set.class_names.binary_search(&class).expect("class listed");
        let chw = decode_to_chw(bytes)
            .map_err(|m| DataError::corrupt(format!("{origin}:{}", p.display()), m))?;
        set.images.extend_from_slice(&chw);
        set.labels.push(label as u16);
    }
    Ok(set)
}

/// The largest width or height an image may declare (it is resized to 32x32 anyway).
const MAX_IMAGE_SIDE: u32 = 8192;

/// Decodes a JPEG or PNG into 32x32 CHW bytes.
pub fn decode_to_chw(bytes: &[u8]) -> Result<Vec<u8>, String> {
    // A few bytes can declare a gigapixel image: cap what the decoder may allocate.
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_IMAGE_SIDE);
    limits.max_image_height = Some(MAX_IMAGE_SIDE);
    limits.max_alloc = Some(256 << 20);
    let mut reader = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| format!("not a readable image ({e})"))?;
    reader.limits(limits);
    let img = reader
        .decode()
        .map_err(|e| format!("not a readable image ({e})"))?
        .to_rgb8();
    let img = if img.dimensions() != (IMAGE_SIZE as u32, IMAGE_SIZE as u32) {
        image::imageops::resize(
            &img,
            IMAGE_SIZE as u32,
            IMAGE_SIZE as u32,
            image::imageops::FilterType::Triangle,
        )
    } else {
        img
    };
    let plane = IMAGE_SIZE * IMAGE_SIZE;
    let mut chw = vec![0u8; IMAGE_BYTES];
    for (i, px) in img.pixels().enumerate() {
        chw[i] = px[0];
        chw[plane + i] = px[1];
        chw[2 * plane + i] = px[2];
    }
    Ok(chw)
}

fn read_dir_files(root: &Path) -> Result<Vec<(PathBuf, Vec<u8>)>, DataError> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).map_err(|e| DataError::io(&dir, e))? {
            let entry = entry.map_err(|e| DataError::io(&dir, e))?;
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else if is_image(&p) {
                let limit = archive::IMAGE_FOLDER.entry;
                let bytes = super::bounded::read_bounded(&p, limit, archive::IMAGE_FOLDER.what)?;
                let rel = p.strip_prefix(root).unwrap_or(&p).to_path_buf();
                out.push((rel, bytes));
            }
        }
    }
    Ok(out)
}

fn read_tar_gz_files(
    reader: impl Read,
    origin: &str,
) -> Result<Vec<(PathBuf, Vec<u8>)>, DataError> {
    archive::read_tar_gz(reader, origin, archive::IMAGE_FOLDER, is_image)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_resizes_and_orders_channels() {
        let mut img = image::RgbImage::new(64, 64);
        for p in img.pixels_mut() {
            *p = image::Rgb([200, 10, 90]);
        }
        let mut png = Vec::new();
        image::DynamicImage::ImageRgb8(img)
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        let chw = decode_to_chw(&png).unwrap();
        assert_eq!(chw.len(), IMAGE_BYTES);
        assert_eq!(chw[0], 200);
        assert_eq!(chw[1024], 10);
        assert_eq!(chw[2048], 90);
    }

    #[test]
    fn garbage_is_a_clear_error() {
        let err = decode_to_chw(b"definitely not a jpeg").unwrap_err();
        assert!(err.contains("not a readable image"), "{err}");
    }
}
