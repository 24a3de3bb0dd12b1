//! Per-backend caches: schema name -> latest version, compiled validators
//! (bounded, least recently used out, keyed by name and version), and the
//! column bindings. Warm, a validation does no SPI and no compilation.
//!
//! Invalidation: a statement trigger on `d5.json_schemas` and
//! `d5.json_schema_bindings` calls `CacheInvalidateRelcacheByRelid`, so every
//! backend (this one at the next command, others at their next transaction)
//! runs [`on_relcache`]. The callback only flips flags; the caches are cleared
//! at the next lookup, never while a lookup holds them.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use d5_core::json_schema::{compile_arena_str, CompiledArenaSchema};
use pgrx::pg_sys;

use super::registry;
use super::JsonSchemaError;
use crate::error::raise;
use crate::gucs;

/// Unknown names are remembered too; past this many names the map starts over.
const MAX_NAMES: usize = 1024;

pub struct Compiled {
    pub name: String,
    pub version: i32,
    /// Validates decoded jsonb documents.
    pub schema: CompiledArenaSchema,
}

/// The bindings of one column of one table.
pub struct ColumnBinding {
    pub column: String,
    /// Applies to every row (None: no global schema).
    pub global: Option<String>,
    /// Applies, in addition, to rows of that tenant.
    pub tenants: HashMap<[u8; 16], String>,
}

pub type Bindings = HashMap<pg_sys::Oid, Rc<Vec<ColumnBinding>>>;

struct Slot {
    version: i32,
    schema: Rc<Compiled>,
    last_used: u64,
}

#[derive(Default)]
struct State {
    /// Latest version per name; `None` remembers "no such schema".
    latest: HashMap<String, Option<i32>>,
    /// Compiled validators by name, one slot per cached version.
    compiled: HashMap<String, Vec<Slot>>,
    compiled_count: usize,
    tick: u64,
    bindings: Option<Rc<Bindings>>,
}

/// What the invalidation callbacks ask for, applied at the next lookup.
#[derive(Clone, Copy, Default)]
struct Stale {
    schemas: bool,
    names: bool,
    bindings: bool,
}

thread_local! {
    static STATE: RefCell<State> = RefCell::new(State::default());
    static STALE: Cell<Stale> = const { Cell::new(Stale { schemas: true, names: true, bindings: true }) };
    /// Schemas compiled by this backend (see `d5._json_schema_cache_stats`).
    static COMPILES: Cell<u64> = const { Cell::new(0) };
    /// Bumped by every invalidation: a load that overlapped one is not kept.
    static GENERATION: Cell<u64> = const { Cell::new(0) };
    /// Data was read with a snapshot that may predate an invalidation already
    /// processed (REPEATABLE READ after a write, parallel mode): drop the
    /// name and binding maps when the transaction ends.
    static PROVISIONAL: Cell<bool> = const { Cell::new(false) };
    /// Oids of d5.json_schemas and d5.json_schema_bindings, learned on load.
    static WATCHED: Cell<(pg_sys::Oid, pg_sys::Oid)> =
        const { Cell::new((pg_sys::Oid::INVALID, pg_sys::Oid::INVALID)) };
}

/// Registers the invalidation callbacks; called once from `_PG_init`.
pub fn init() {
    // SAFETY: called from _PG_init; both callbacks live for the process and
    // touch only thread-local cells.
    unsafe {
        pg_sys::CacheRegisterRelcacheCallback(Some(on_relcache), pg_sys::Datum::from(0));
        pg_sys::RegisterXactCallback(Some(on_xact_end), std::ptr::null_mut());
    }
}

fn mark(f: impl FnOnce(&mut Stale)) {
    let _ = GENERATION.try_with(|g| g.set(g.get().wrapping_add(1)));
    let _ = STALE.try_with(|cell| {
        let mut s = cell.get();
        f(&mut s);
        cell.set(s);
    });
}

unsafe extern "C-unwind" fn on_relcache(_arg: pg_sys::Datum, relid: pg_sys::Oid) {
    let (schemas, bindings) = WATCHED.try_with(Cell::get).unwrap_or_default();
    if relid == pg_sys::Oid::INVALID {
        // "All relations": also sent after a missed invalidation queue.
        mark(|s| *s = Stale { schemas: true, names: true, bindings: true });
        let _ = WATCHED.try_with(|w| w.set((pg_sys::Oid::INVALID, pg_sys::Oid::INVALID)));
    } else if relid == schemas {
        mark(|s| {
            s.schemas = true;
            s.names = true;
        });
    } else if relid == bindings {
        mark(|s| s.bindings = true);
    }
}

unsafe extern "C-unwind" fn on_xact_end(event: pg_sys::XactEvent::Type, _arg: *mut std::ffi::c_void) {
    use pg_sys::XactEvent::*;
    if matches!(event, XACT_EVENT_COMMIT | XACT_EVENT_ABORT | XACT_EVENT_PREPARE)
        && PROVISIONAL.try_with(|p| p.replace(false)).unwrap_or(false)
    {
        mark(|s| {
            s.names = true;
            s.bindings = true;
        });
    }
}

pub fn set_watched(schemas: pg_sys::Oid, bindings: pg_sys::Oid) {
    WATCHED.with(|w| w.set((schemas, bindings)));
}

pub fn set_provisional() {
    PROVISIONAL.with(|p| p.set(true));
}

/// Clears what the callbacks marked stale.
fn apply_invalidations(state: &mut State) {
    let stale = STALE.with(|c| c.replace(Stale::default()));
    if stale.schemas {
        state.compiled.clear();
        state.compiled_count = 0;
    }
    if stale.names || stale.schemas {
        state.latest.clear();
    }
    if stale.bindings {
        state.bindings = None;
    }
}

fn generation() -> u64 {
    GENERATION.with(Cell::get)
}

/// Keeps what a load produced only if no invalidation arrived since `gen`.
fn store(gen: u64, f: impl FnOnce(&mut State)) {
    if generation() == gen {
        with_state(f);
    }
}

fn capacity() -> usize {
    usize::try_from(gucs::JSON_SCHEMA_CACHE_SIZE.get()).unwrap_or(0)
}

fn with_state<R>(f: impl FnOnce(&mut State) -> R) -> R {
    STATE.with(|cell| {
        let mut state = cell.borrow_mut();
        apply_invalidations(&mut state);
        f(&mut state)
    })
}

fn compile(name: &str, version: i32, text: &str) -> Rc<Compiled> {
    COMPILES.with(|c| c.set(c.get() + 1));
    let schema = compile_arena_str(text).unwrap_or_else(|error| {
        raise(JsonSchemaError::StoredSchemaBroken { name: name.to_owned(), version, error })
    });
    Rc::new(Compiled { name: name.to_owned(), version, schema })
}

/// The latest version of `name`, compiled. Raises if there is no such schema.
pub fn latest(name: &str) -> Rc<Compiled> {
    let cap = capacity();
    if cap == 0 {
        let (version, text) = registry::load_latest(name)
            .unwrap_or_else(|| raise(JsonSchemaError::UnknownSchema(name.to_owned())));
        return compile(name, version, &text);
    }
    let known = with_state(|s| {
        let version = *s.latest.get(name)?;
        Some(version.map(|v| (v, lookup(s, name, v))))
    });
    match known {
        Some(None) => raise(JsonSchemaError::UnknownSchema(name.to_owned())),
        Some(Some((_, Some(hit)))) => hit,
        Some(Some((version, None))) => {
            let gen = generation();
            let text = registry::load_version(name, version)
                .unwrap_or_else(|| raise(JsonSchemaError::UnknownSchema(name.to_owned())));
            let compiled = compile(name, version, &text);
            store(gen, |s| insert(s, cap, compiled.clone()));
            compiled
        }
        None => {
            let gen = generation();
            let loaded = registry::load_latest(name);
            store(gen, |s| {
                if s.latest.len() >= MAX_NAMES {
                    s.latest.clear();
                }
                s.latest.insert(name.to_owned(), loaded.as_ref().map(|(v, _)| *v));
            });
            let (version, text) =
                loaded.unwrap_or_else(|| raise(JsonSchemaError::UnknownSchema(name.to_owned())));
            if let Some(hit) = with_state(|s| lookup(s, name, version)) {
                return hit;
            }
            let compiled = compile(name, version, &text);
            store(gen, |s| insert(s, cap, compiled.clone()));
            compiled
        }
    }
}

fn lookup(s: &mut State, name: &str, version: i32) -> Option<Rc<Compiled>> {
    s.tick += 1;
    let tick = s.tick;
    let slot = s.compiled.get_mut(name)?.iter_mut().find(|slot| slot.version == version)?;
    slot.last_used = tick;
    Some(slot.schema.clone())
}

fn insert(s: &mut State, cap: usize, schema: Rc<Compiled>) {
    while s.compiled_count >= cap && evict_oldest(s) {}
    s.tick += 1;
    let slots = s.compiled.entry(schema.name.clone()).or_default();
    if slots.iter().any(|slot| slot.version == schema.version) {
        return;
    }
    slots.push(Slot { version: schema.version, schema, last_used: s.tick });
    s.compiled_count += 1;
}

/// Drops the least recently used validator; false when there is none.
fn evict_oldest(s: &mut State) -> bool {
    let oldest = s
        .compiled
        .iter()
        .flat_map(|(name, slots)| slots.iter().map(move |slot| (slot.last_used, name, slot.version)))
        .min_by_key(|(used, _, _)| *used)
        .map(|(_, name, version)| (name.clone(), version));
    let Some((name, version)) = oldest else {
        return false;
    };
    if let Some(slots) = s.compiled.get_mut(&name) {
        slots.retain(|slot| slot.version != version);
        if slots.is_empty() {
            s.compiled.remove(&name);
        }
    }
    s.compiled_count = s.compiled_count.saturating_sub(1);
    true
}

/// The bound columns of a table (empty when none).
pub fn bindings_for(relid: pg_sys::Oid) -> Option<Rc<Vec<ColumnBinding>>> {
    let cached = with_state(|s| s.bindings.clone());
    let all = match cached {
        Some(all) => all,
        None => {
            let gen = generation();
            let all = Rc::new(registry::load_bindings());
            if capacity() > 0 {
                store(gen, |s| s.bindings = Some(all.clone()));
            }
            all
        }
    };
    all.get(&relid).cloned()
}

/// Validators held and schemas compiled so far by this backend (for tests).
pub fn stats() -> (usize, u64) {
    (with_state(|s| s.compiled_count), COMPILES.with(Cell::get))
}
