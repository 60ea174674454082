//! The log as C2SP tlog-tiles (<https://c2sp.org/tlog-tiles>): static, cacheable files any
//! client checks with its own code.
//!
//! - `checkpoint`: the newest published checkpoint (with its cosignatures);
//! - `tile/<L>/<N>[.p/<W>]`: hash tiles of height 8, the tree's hashes at level `8·L`;
//! - `tile/entries/<N>[.p/<W>]`: entry bundles, each entry as a big-endian `uint16` length
//!   and the bytes its leaf hashes (`SHA-256(0x00 ‖ bytes)`).
//!
//! A client proves an entry from a bundle against the signed checkpoint with nothing of
//! Vellum: the bytes are the entry's canonical encoding (`docs/ledger-format.md`). For
//! format-2 entries they are the envelope and the content's commitment, never the content,
//! so erasure leaves them as they were; format-1 entries (written before schema 5) carry
//! their content.
//!
//! A full tile never changes; a partial one (`.p/<W>`) is the same bytes for as long as it
//! is served. [`export`] writes the files for a static host; `vellum serve` serves them.

use std::io::Write;
use std::path::Path;

use tlog_tiles::tile::Tile;

use super::merkle::StoreHashes;
use super::store::{StoreError, StoreReader};

/// The tile height C2SP tlog-tiles fixes.
pub const HEIGHT: u8 = 8;
/// Entries or hashes in a full tile.
pub const WIDTH: u64 = 1 << HEIGHT;

/// One file of the tiled log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    /// A hash tile.
    Hashes(Tile),
    /// An entry bundle (the level-0 tile's entries).
    Entries(Tile),
}

/// Why a tile cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum TileError {
    /// Not a tile path of this log.
    #[error("not a tile path: {0}")]
    BadPath(String),
    /// The tile covers entries beyond the tree.
    #[error("{0} is beyond the tree of {1} entries")]
    Beyond(String, u64),
    /// An entry too large for a bundle's 16-bit length.
    #[error("entry {0} is {1} bytes, more than an entry bundle holds (65535)")]
    TooLarge(u64, usize),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Resource {
    /// Parses a C2SP path below the log's prefix (`tile/0/x001/234.p/5`,
    /// `tile/entries/000`).
    pub fn parse(path: &str) -> Result<Self, TileError> {
        let bad = || TileError::BadPath(path.to_string());
        // Bounded input: the longest N (u64) has seven elements.
        if path.len() > 64 {
            return Err(bad());
        }
        let rest = path.strip_prefix("tile/").ok_or_else(bad)?;
        let (level, rest) = rest.split_once('/').ok_or_else(bad)?;
        let (entries, level) = match level {
            "entries" => (true, 0),
            level => (false, decimal(level).filter(|l| *l < 64).ok_or_else(bad)?),
        };
        let (index, width) = match rest.split_once(".p/") {
            Some((index, width)) => (
                index,
                decimal(width)
                    .filter(|w| (1..WIDTH).contains(w))
                    .ok_or_else(bad)?,
            ),
            None => (rest, WIDTH),
        };
        let mut n: u64 = 0;
        let elements: Vec<&str> = index.split('/').collect();
        for (i, element) in elements.iter().enumerate() {
            let digits = match i + 1 == elements.len() {
                true => *element,
                false => element.strip_prefix('x').ok_or_else(bad)?,
            };
            if digits.len() != 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            n = n
                .checked_mul(1000)
                .and_then(|n| n.checked_add(digits.parse().ok()?))
                .ok_or_else(bad)?;
        }
        // Level and width are in range, so `Tile::new` holds; u8 and u32 fit them.
        let tile = Tile::new(HEIGHT, level as u8, n, width as u32, entries);
        let resource = match entries {
            true => Self::Entries(tile),
            false => Self::Hashes(tile),
        };
        // One path per tile: no extra leading `x000/` elements.
        match resource.path() == path {
            true => Ok(resource),
            false => Err(bad()),
        }
    }

    /// The C2SP path.
    pub fn path(&self) -> String {
        let (tile, entries) = match self {
            Self::Hashes(t) => (t, false),
            Self::Entries(t) => (t, true),
        };
        let inner = tile.path();
        let rest = inner
            .strip_prefix(&format!("tile/{HEIGHT}/"))
            .unwrap_or(&inner);
        match entries {
            true => format!(
                "tile/entries/{}",
                rest.strip_prefix("data/").unwrap_or(rest)
            ),
            false => format!("tile/{rest}"),
        }
    }

    /// Whether the file is complete, so never changes (cache it forever).
    pub fn is_full(&self) -> bool {
        let (Self::Hashes(t) | Self::Entries(t)) = self;
        u64::from(t.width()) == WIDTH
    }

    /// Reads the file from a tree of `size` entries.
    pub fn read(&self, store: &dyn StoreReader, size: u64) -> Result<Vec<u8>, TileError> {
        let (Self::Hashes(tile) | Self::Entries(tile)) = self;
        let level = u32::from(tile.level()) * u32::from(HEIGHT);
        let available = size.checked_shr(level).unwrap_or(0);
        let end = tile
            .level_index()
            .checked_mul(WIDTH)
            .and_then(|start| start.checked_add(u64::from(tile.width())));
        if end.is_none_or(|end| end > available) {
            return Err(TileError::Beyond(self.path(), size));
        }
        match self {
            Self::Hashes(tile) => {
                let reader = StoreHashes::new(store);
                tile.read_data(&reader).map_err(|e| reader.error(e).into())
            }
            Self::Entries(tile) => {
                let start = tile.level_index() * WIDTH;
                bundle(store, start, start + u64::from(tile.width()))
            }
        }
    }
}

/// A decimal number without a leading zero.
fn decimal(text: &str) -> Option<u64> {
    let canonical = text == "0" || (!text.starts_with('0') && !text.is_empty());
    match canonical && text.bytes().all(|b| b.is_ascii_digit()) {
        true => text.parse().ok(),
        false => None,
    }
}

/// The entry bundle of entries `from..to`.
fn bundle(store: &dyn StoreReader, from: u64, to: u64) -> Result<Vec<u8>, TileError> {
    let mut out = Vec::new();
    for (entry, _) in store.entries(from, to)? {
        let bytes = entry.leaf_bytes();
        let len =
            u16::try_from(bytes.len()).map_err(|_| TileError::TooLarge(entry.seq, bytes.len()))?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&bytes);
    }
    Ok(out)
}

/// The files a tree of `size` entries is served as: every hash tile and entry bundle,
/// full and partial.
pub fn resources(size: u64) -> Vec<Resource> {
    let hashes = Tile::new_tiles(HEIGHT, 0, size);
    let mut out: Vec<Resource> = hashes.iter().copied().map(Resource::Hashes).collect();
    for tile in hashes.iter().filter(|t| t.level() == 0) {
        let mut data = *tile;
        data.set_is_data();
        out.push(Resource::Entries(data));
    }
    out
}

/// Reads tiles for a client, through `fetch` (C2SP path → bytes), checking each length.
struct Fetched<'a> {
    fetch: &'a dyn Fn(&str) -> Result<Vec<u8>, String>,
    error: std::cell::RefCell<Option<String>>,
}

impl tlog_tiles::tile::TileReader for Fetched<'_> {
    fn height(&self) -> u8 {
        HEIGHT
    }

    fn read_tiles(&self, tiles: &[Tile]) -> Result<Vec<Vec<u8>>, tlog_tiles::tlog::Error> {
        let mut out = Vec::with_capacity(tiles.len());
        for tile in tiles {
            let path = Resource::Hashes(*tile).path();
            let data = (self.fetch)(&path).and_then(|data| {
                match data.len() == tile.width() as usize * tlog_tiles::tlog::HASH_SIZE {
                    true => Ok(data),
                    false => Err(format!(
                        "{path} has {} bytes, not {} hashes",
                        data.len(),
                        tile.width()
                    )),
                }
            });
            match data {
                Ok(data) => out.push(data),
                Err(e) => {
                    *self.error.borrow_mut() = Some(e);
                    return Err(tlog_tiles::tlog::Error::InvalidTile);
                }
            }
        }
        Ok(out)
    }

    fn save_tiles(&self, _: &[Tile], _: &[Vec<u8>]) {}
}

/// For a client of a tiled log: the root of its first `old_size` entries, from the tiles
/// of the tree of `size` entries with root `root` (each tile read through `fetch`, a C2SP
/// path to its bytes, and checked against `root` before use). Comparing it with a root
/// seen earlier proves (or disproves) that the log only grew.
pub fn prefix_root(
    fetch: &dyn Fn(&str) -> Result<Vec<u8>, String>,
    size: u64,
    root: super::Hash,
    old_size: u64,
) -> Result<super::Hash, String> {
    if old_size > size {
        return Err(format!("{old_size} entries are not a prefix of {size}"));
    }
    let reader = Fetched {
        fetch,
        error: std::cell::RefCell::new(None),
    };
    let hashes = tlog_tiles::tile::TileHashReader::new(size, root.into(), &reader);
    tlog_tiles::tlog::tree_hash(old_size, &hashes)
        .map(super::Hash::from)
        .map_err(|e| {
            reader
                .error
                .borrow_mut()
                .take()
                .unwrap_or_else(|| e.to_string())
        })
}

/// What [`export`] wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExportReport {
    /// Tree size of the exported checkpoint.
    pub size: u64,
    /// Files written.
    pub written: usize,
    /// Full tiles already there, left as they were.
    pub kept: usize,
}

/// Writes the tiled log of the checkpoint `note` (of `size` entries, with its
/// cosignatures) into `dir`: every tile and bundle, then `checkpoint` last, so a client
/// reading the directory meanwhile never sees a checkpoint whose tiles are missing. Full
/// tiles already present are kept (they never change); each file is written to a
/// temporary name and renamed into place.
pub fn export(
    store: &dyn StoreReader,
    size: u64,
    note: &str,
    dir: &Path,
) -> Result<ExportReport, String> {
    let mut report = ExportReport {
        size,
        ..ExportReport::default()
    };
    for resource in resources(size) {
        let target = dir.join(resource.path());
        if resource.is_full() && target.exists() {
            report.kept += 1;
            continue;
        }
        let data = resource
            .read(store, size)
            .map_err(|e| format!("reading {}: {e}", resource.path()))?;
        write_file(&target, &data)?;
        report.written += 1;
    }
    write_file(&dir.join("checkpoint"), note.as_bytes())?;
    report.written += 1;
    Ok(report)
}

fn write_file(target: &Path, data: &[u8]) -> Result<(), String> {
    let failed = |e: std::io::Error| format!("writing {}: {e}", target.display());
    let parent = target.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(failed)?;
    let mut temp = tempfile::NamedTempFile::new_in(parent).map_err(failed)?;
    temp.write_all(data).map_err(failed)?;
    temp.persist(target).map_err(|e| failed(e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_round_trip_in_the_c2sp_form() {
        for path in [
            "tile/0/000",
            "tile/0/x001/234",
            "tile/1/000.p/7",
            "tile/entries/000",
            "tile/entries/x002/005.p/255",
        ] {
            assert_eq!(Resource::parse(path).unwrap().path(), path);
        }
        for bad in [
            "tile/8/0/000",
            "tile/0/1000",
            "tile/0/000.p/256",
            "tile/0/000.p/0",
            "tile/entries/000.p/x",
            "tiles/0/000",
            "tile/0/../000",
            "tile/64/000",
            "tile/01/000",
            "tile/0/x000/001",
            "tile/0/000.p/07",
            "tile/0/x018/x446/x744/x073/x709/x551/616",
            "tile/entries",
            "",
        ] {
            assert!(Resource::parse(bad).is_err(), "{bad}");
        }
        assert!(Resource::parse("tile/0/000").unwrap().is_full());
        assert!(!Resource::parse("tile/0/000.p/3").unwrap().is_full());
    }

    proptest::proptest! {
        /// A path is input from the network: any text is refused or parsed, never a panic,
        /// and what parses is the one canonical path of its tile.
        #[test]
        fn any_path_parses_canonically_or_is_refused(path in "tile/(entries|[0-9x.p/]{1,4})/[0-9x./p]{0,40}") {
            if let Ok(resource) = Resource::parse(&path) {
                proptest::prop_assert_eq!(resource.path(), path);
            }
        }
    }

    #[test]
    fn a_tree_of_300_entries_is_two_level_0_tiles_a_level_1_tile_and_two_bundles() {
        let paths: Vec<String> = resources(300).iter().map(Resource::path).collect();
        assert_eq!(
            paths,
            [
                "tile/0/000",
                "tile/0/001.p/44",
                "tile/1/000.p/1",
                "tile/entries/000",
                "tile/entries/001.p/44"
            ]
        );
    }
}
