//! A jsonb document decoded once into a flat, borrowed tree, for validation.
//!
//! Validating jsonb bytes in place (`Jsonb`) re-checks UTF-8 on every string
//! access and re-encodes each property name for `propertyNames`; converting
//! to `serde_json::Value` allocates a `String` per key and value and builds
//! B-trees. Here one iterative pass stores every node in one `Vec`, strings
//! borrowed from the jsonb bytes, children of a container side by side, keys
//! in jsonb's order (by length, then bytes). The depth bound is applied
//! during that pass. Numbers become `serde_json::Number`s (beyond ±1.8e308
//! they saturate, as the crate's jsonb reader renders them).

use std::borrow::Cow;

use jsonschema::json::{cmp, Array, Json, JsonNumber, JsonbNode, Node, NodeIdentity, Object};
use jsonschema::types::JsonType;
use serde_json::{Number, Value};

use super::{push_escaped, DepthError, Jsonb};

/// The representation (a marker type for `CompiledSchema<Arena>`).
pub struct Arena;

enum Item<'a> {
    Null,
    Bool(bool),
    Number(Number),
    String(Cow<'a, str>),
    Array { first: u32, len: u32 },
    Object { first: u32, len: u32 },
}

/// One decoded document; [`ArenaDoc::root`] is what validators take.
pub struct ArenaDoc<'a> {
    items: Vec<Item<'a>>,
    /// `keys[i]` names `items[i]` when its parent is an object ("" otherwise).
    keys: Vec<Cow<'a, str>>,
    /// A key was not UTF-8 (non-UTF8 databases): key order is then unknown.
    lossy: bool,
}

/// A node of an [`ArenaDoc`], or a bare string (a property name being validated).
#[derive(Clone, Copy)]
pub enum ArenaNode<'a> {
    Item(&'a ArenaDoc<'a>, u32),
    Name(&'a str),
}

fn is_container(node: &JsonbNode<'_>) -> bool {
    node.as_object().is_some() || node.as_array().is_some()
}

fn scalar<'a>(node: &JsonbNode<'a>) -> Item<'a> {
    if let Some(s) = node.as_string() {
        Item::String(s)
    } else if let Some(n) = node.as_number() {
        Item::Number(n.to_number().into_owned())
    } else if let Some(b) = node.as_boolean() {
        Item::Bool(b)
    } else {
        Item::Null
    }
}

impl<'a> ArenaDoc<'a> {
    /// Decodes jsonb container bytes (no varlena header, as Postgres writes
    /// them: it panics otherwise), refusing containers deeper than `max_depth`
    /// (root = 1) with the JSON Pointer of the first one found.
    pub fn from_jsonb(container: &'a [u8], max_depth: usize) -> Result<Self, DepthError> {
        let mut doc = ArenaDoc { items: Vec::with_capacity(32), keys: Vec::with_capacity(32), lossy: false };
        doc.items.push(Item::Null);
        doc.keys.push(Cow::Borrowed(""));
        // Containers still to expand: (node, its slot in `items`, depth).
        let mut pending: Vec<(JsonbNode<'a>, u32, usize)> = vec![(Jsonb::root(container), 0, 1)];
        while let Some((node, slot, depth)) = pending.pop() {
            let item = if let Some(object) = node.as_object() {
                if depth > max_depth {
                    return Err(DepthError { path: doc.path(slot), max: max_depth });
                }
                let first = doc.next_slot();
                for (key, child) in object.members() {
                    doc.lossy |= matches!(key, Cow::Owned(_));
                    doc.push(key, &child, depth, &mut pending);
                }
                Item::Object { first, len: doc.next_slot() - first }
            } else if let Some(array) = node.as_array() {
                if depth > max_depth {
                    return Err(DepthError { path: doc.path(slot), max: max_depth });
                }
                let first = doc.next_slot();
                for child in array.elements() {
                    doc.push(Cow::Borrowed(""), &child, depth, &mut pending);
                }
                Item::Array { first, len: doc.next_slot() - first }
            } else {
                scalar(&node)
            };
            doc.items[slot as usize] = item;
        }
        // Saturated numbers leave a note for error reporting; nothing reads it here.
        let _ = jsonschema::json::jsonb::take_pending_error();
        Ok(doc)
    }

    fn next_slot(&self) -> u32 {
        u32::try_from(self.items.len()).unwrap_or(u32::MAX)
    }

    fn push(
        &mut self,
        key: Cow<'a, str>,
        child: &JsonbNode<'a>,
        depth: usize,
        pending: &mut Vec<(JsonbNode<'a>, u32, usize)>,
    ) {
        let slot = self.next_slot();
        self.keys.push(key);
        if is_container(child) {
            self.items.push(Item::Null);
            pending.push((*child, slot, depth + 1));
        } else {
            self.items.push(scalar(child));
        }
    }

    /// JSON Pointer of a slot (error path only: finds parents by scanning).
    fn path(&self, mut slot: u32) -> String {
        let mut steps = Vec::new();
        while slot != 0 {
            let parent = self.items.iter().enumerate().find_map(|(i, item)| match *item {
                Item::Object { first, len } | Item::Array { first, len }
                    if (first..first.saturating_add(len)).contains(&slot) =>
                {
                    Some((i, matches!(item, Item::Object { .. }), first))
                }
                _ => None,
            });
            let Some((parent, is_object, first)) = parent else { break };
            steps.push(if is_object {
                self.keys[slot as usize].to_string()
            } else {
                (slot - first).to_string()
            });
            slot = u32::try_from(parent).unwrap_or(0);
        }
        let mut out = String::new();
        for step in steps.iter().rev() {
            out.push('/');
            push_escaped(&mut out, step);
        }
        out
    }

    /// The document's root node.
    pub fn root(&'a self) -> ArenaNode<'a> {
        ArenaNode::Item(self, 0)
    }
}

impl Json for Arena {
    type Node<'a> = ArenaNode<'a>;
    type PreparedKey = String;
    type StringBuffer = ();

    // Lookups are a binary search over sorted keys, as cheap as a B-tree's.
    const KEYS_PER_LOOKUP: usize = 2;
    const ACYCLIC: bool = true;

    fn prepare_key(key: &str) -> String {
        key.to_owned()
    }

    fn with_string_node<T>((): &mut (), string: &str, f: impl FnOnce(ArenaNode<'_>) -> T) -> T {
        f(ArenaNode::Name(string))
    }
}

impl<'a> ArenaNode<'a> {
    fn item(&self) -> Option<(&'a ArenaDoc<'a>, &'a Item<'a>)> {
        match *self {
            ArenaNode::Item(doc, at) => doc.items.get(at as usize).map(|item| (doc, item)),
            ArenaNode::Name(_) => None,
        }
    }

    fn str(&self) -> Option<&'a str> {
        match *self {
            ArenaNode::Name(s) => Some(s),
            ArenaNode::Item(doc, at) => match doc.items.get(at as usize) {
                Some(Item::String(s)) => Some(s.as_ref()),
                _ => None,
            },
        }
    }
}

/// Code points in valid UTF-8: every byte that does not continue a sequence.
fn char_count(s: &str) -> u64 {
    s.bytes().filter(|b| (b & 0xC0) != 0x80).count() as u64
}

impl<'a> Node<'a, Arena> for ArenaNode<'a> {
    type Object = ArenaObject<'a>;
    type Array = ArenaArray<'a>;
    type Number = &'a Number;

    fn as_object(&self) -> Option<ArenaObject<'a>> {
        match self.item()? {
            (doc, &Item::Object { first, len }) => Some(ArenaObject { doc, first, len }),
            _ => None,
        }
    }

    fn as_array(&self) -> Option<ArenaArray<'a>> {
        match self.item()? {
            (doc, &Item::Array { first, len }) => Some(ArenaArray { doc, first, len }),
            _ => None,
        }
    }

    fn as_string(&self) -> Option<Cow<'a, str>> {
        self.str().map(Cow::Borrowed)
    }

    fn as_number(&self) -> Option<&'a Number> {
        match self.item()? {
            (_, Item::Number(n)) => Some(n),
            _ => None,
        }
    }

    fn as_boolean(&self) -> Option<bool> {
        match self.item()? {
            (_, Item::Bool(b)) => Some(*b),
            _ => None,
        }
    }

    fn is_null(&self) -> bool {
        matches!(self.item(), Some((_, Item::Null)))
    }

    fn json_type(&self) -> JsonType {
        match self.item() {
            None => JsonType::String,
            Some((_, item)) => match item {
                Item::Null => JsonType::Null,
                Item::Bool(_) => JsonType::Boolean,
                Item::Number(_) => JsonType::Number,
                Item::String(_) => JsonType::String,
                Item::Array { .. } => JsonType::Array,
                Item::Object { .. } => JsonType::Object,
            },
        }
    }

    fn string_length(&self) -> Option<u64> {
        self.str().map(char_count)
    }

    fn string_length_within(&self, min: u64, max: u64) -> Option<bool> {
        let s = self.str()?;
        // A code point is one to four bytes: most checks need no counting.
        let bytes = s.len() as u64;
        let fewest = bytes.div_ceil(4);
        if bytes < min || fewest > max {
            return Some(false);
        }
        if min <= fewest && bytes <= max {
            return Some(true);
        }
        Some((min..=max).contains(&char_count(s)))
    }

    fn equals_value(&self, expected: &Value) -> bool {
        match (self.item(), expected) {
            (None, Value::String(e)) => self.str() == Some(e.as_str()),
            (None, _) => false,
            (Some((_, Item::Null)), _) => expected.is_null(),
            (Some((_, Item::Bool(b))), _) => expected.as_bool() == Some(*b),
            (Some((_, Item::String(s))), _) => expected.as_str() == Some(s.as_ref()),
            (Some((_, Item::Number(n))), Value::Number(e)) => cmp::equal_numbers(&n, e),
            (Some((_, Item::Number(_))), _) => false,
            _ => cmp::equal(&self.to_value(), expected),
        }
    }

    fn to_value(&self) -> Cow<'a, Value> {
        Cow::Owned(materialize(*self))
    }

    fn identity(&self) -> Option<NodeIdentity> {
        Some(match *self {
            ArenaNode::Item(doc, at) => NodeIdentity::new(doc.items.as_ptr() as usize + at as usize),
            ArenaNode::Name(s) => NodeIdentity::tagged(s.as_ptr() as usize, 1),
        })
    }
}

/// Builds a `serde_json::Value` (for messages, `const`, `enum`), iteratively.
fn materialize(node: ArenaNode<'_>) -> Value {
    let (doc, at) = match node {
        ArenaNode::Name(s) => return Value::String(s.to_owned()),
        ArenaNode::Item(doc, at) => (doc, at),
    };
    let leaf = |slot: u32| match doc.items.get(slot as usize) {
        Some(Item::Bool(b)) => Value::Bool(*b),
        Some(Item::Number(n)) => Value::Number(n.clone()),
        Some(Item::String(s)) => Value::String(s.to_string()),
        _ => Value::Null,
    };
    let children = |slot: u32| match doc.items.get(slot as usize) {
        Some(&Item::Array { first, len }) => Some((false, first..first + len)),
        Some(&Item::Object { first, len }) => Some((true, first..first + len)),
        _ => None,
    };
    let Some((is_object, range)) = children(at) else {
        return leaf(at);
    };
    // (own slot, is object, children left, (slot, value) of children done)
    let mut stack = vec![(at, is_object, range, Vec::new())];
    while let Some(top) = stack.last_mut() {
        if let Some(child) = top.2.next() {
            match children(child) {
                Some((is_object, range)) => stack.push((child, is_object, range, Vec::new())),
                None => top.3.push((child, leaf(child))),
            }
            continue;
        }
        let Some((slot, is_object, _, done)) = stack.pop() else { break };
        let value = if is_object {
            let key = |s: u32| doc.keys.get(s as usize).map_or_else(String::new, |k| k.to_string());
            Value::Object(done.into_iter().map(|(s, v)| (key(s), v)).collect())
        } else {
            Value::Array(done.into_iter().map(|(_, v)| v).collect())
        };
        match stack.last_mut() {
            Some(parent) => parent.3.push((slot, value)),
            None => return value,
        }
    }
    Value::Null
}

pub struct ArenaObject<'a> {
    doc: &'a ArenaDoc<'a>,
    first: u32,
    len: u32,
}

pub struct ArenaMembers<'a> {
    doc: &'a ArenaDoc<'a>,
    slots: std::ops::Range<u32>,
}

impl<'a> Iterator for ArenaMembers<'a> {
    type Item = (&'a str, ArenaNode<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        let slot = self.slots.next()?;
        let key = self.doc.keys.get(slot as usize).map_or("", |k| k.as_ref());
        Some((key, ArenaNode::Item(self.doc, slot)))
    }
}

impl<'a> Object<'a, Arena> for ArenaObject<'a> {
    type Node = ArenaNode<'a>;
    type MemberName = &'a str;
    type MembersIter = ArenaMembers<'a>;

    fn len(&self) -> usize {
        self.len as usize
    }

    fn get(&self, key: &String) -> Option<ArenaNode<'a>> {
        let start = self.first as usize;
        let keys = self.doc.keys.get(start..start + self.len as usize)?;
        let found = if self.doc.lossy || keys.len() <= 8 {
            keys.iter().position(|k| k.as_ref() == key.as_str())
        } else {
            // jsonb sorts keys by length, then bytes.
            keys.binary_search_by(|k| (k.len(), k.as_bytes()).cmp(&(key.len(), key.as_bytes()))).ok()
        }?;
        Some(ArenaNode::Item(self.doc, self.first + u32::try_from(found).ok()?))
    }

    fn members(&self) -> ArenaMembers<'a> {
        ArenaMembers { doc: self.doc, slots: self.first..self.first + self.len }
    }
}

pub struct ArenaArray<'a> {
    doc: &'a ArenaDoc<'a>,
    first: u32,
    len: u32,
}

pub struct ArenaElements<'a> {
    doc: &'a ArenaDoc<'a>,
    slots: std::ops::Range<u32>,
}

impl<'a> Iterator for ArenaElements<'a> {
    type Item = ArenaNode<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        self.slots.next().map(|slot| ArenaNode::Item(self.doc, slot))
    }
}

impl<'a> Array<'a, Arena> for ArenaArray<'a> {
    type Node = ArenaNode<'a>;
    type ElementsIter = ArenaElements<'a>;

    fn len(&self) -> usize {
        self.len as usize
    }

    fn elements(&self) -> ArenaElements<'a> {
        ArenaElements { doc: self.doc, slots: self.first..self.first + self.len }
    }
}
