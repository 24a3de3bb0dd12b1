//! Bounds on Postgres `jsonb` documents validated in place.
//!
//! Postgres accepts jsonb nested thousands of levels deep, and a validator
//! recurses with the document, so depth is bounded first, iteratively.

use jsonschema::json::{Array, Jsonb, JsonbNode, Node, Object};

use super::{push_escaped, DepthError};

/// Refuse jsonb container bytes (no varlena header) in which any container
/// sits deeper than `max_depth` (root = depth 1), naming the first such path.
///
/// The bytes must be a container as Postgres writes one (it panics otherwise).
pub fn check_jsonb_depth(container: &[u8], max_depth: usize) -> Result<(), DepthError> {
    // Parent links (index, step) of visited containers; paths are built only on error.
    let mut trail: Vec<(usize, String)> = vec![(usize::MAX, String::new())];
    let mut stack: Vec<(JsonbNode<'_>, usize, usize)> = vec![(Jsonb::root(container), 0, 1)];
    let is_container = |n: &JsonbNode<'_>| n.as_object().is_some() || n.as_array().is_some();
    while let Some((node, at, depth)) = stack.pop() {
        let object = node.as_object();
        let array = node.as_array();
        if (object.is_some() || array.is_some()) && depth > max_depth {
            return Err(DepthError { path: path(&trail, at), max: max_depth });
        }
        // Only containers are followed (and named); scalars cost a type check.
        if let Some(object) = object {
            for (key, child) in object.members() {
                if is_container(&child) {
                    trail.push((at, key.into_owned()));
                    stack.push((child, trail.len() - 1, depth + 1));
                }
            }
        } else if let Some(array) = array {
            for (i, child) in array.elements().enumerate() {
                if is_container(&child) {
                    trail.push((at, i.to_string()));
                    stack.push((child, trail.len() - 1, depth + 1));
                }
            }
        }
    }
    Ok(())
}

fn path(trail: &[(usize, String)], mut at: usize) -> String {
    let mut steps = Vec::new();
    while at != 0 {
        let Some((parent, step)) = trail.get(at) else { break };
        steps.push(step.as_str());
        at = *parent;
    }
    let mut out = String::new();
    for step in steps.iter().rev() {
        out.push('/');
        push_escaped(&mut out, step);
    }
    out
}
