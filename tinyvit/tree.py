"""Small helpers over parameter trees: nested dicts (and lists) whose leaves are arrays.

A tree such as `{"blocks": [{"attn": {"qkv": {"w": W}}}]}` flattens to the path-keyed dict
`{"blocks/0/attn/qkv/w": W}`; list positions become the keys "0", "1", ... .
These flat names are the ones stored in checkpoints (`tinyvit.run.checkpoint`).
"""
import numpy as np

SEP = "/"


def _is_node(x):
    """True for the containers a tree is made of (dict, list, tuple)."""
    return isinstance(x, (dict, list, tuple))


def _children(node):
    """(key, child) pairs of a dict or a list/tuple, keys as strings."""
    if isinstance(node, dict):
        return [(str(k), v) for k, v in node.items()]
    return [(str(i), v) for i, v in enumerate(node)]


def flatten(params, prefix=""):
    """Nested dicts/lists -> {"blocks/0/attn/qkv/w": leaf}, in the tree's own order.

    Empty dicts/lists have no leaves and vanish. Dict keys may not contain "/".
    """
    flat = {}
    for key, child in _children(params):
        if SEP in key:
            raise ValueError(f"tree key {key!r} under {prefix or '<root>'!r}: expected no {SEP!r}")
        path = f"{prefix}{SEP}{key}" if prefix else key
        if _is_node(child):
            flat.update(flatten(child, path))
        else:
            flat[path] = child
    return flat


def _lists_from_int_keys(node):
    """Turn every dict whose keys are exactly "0".."n-1" into a list (bottom-up)."""
    if not isinstance(node, dict):
        return node
    node = {k: _lists_from_int_keys(v) for k, v in node.items()}
    if node and all(k.isdigit() for k in node) and \
            sorted(int(k) for k in node) == list(range(len(node))):
        return [node[str(i)] for i in range(len(node))]
    return node


def unflatten(flat):
    """Inverse of `flatten`: {"a/0/b": x} -> {"a": [{"b": x}]}.

    A level whose keys are exactly 0..n-1 becomes a list (so a dict that really had
    keys "0", "1" would come back as a list).
    """
    root = {}
    for path, leaf in flat.items():
        *parents, last = path.split(SEP)
        node = root
        for key in parents:
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                raise ValueError(f"unflatten: {path!r} passes through the leaf {key!r}")
        if last in node:
            raise ValueError(f"unflatten: {path!r} is both a leaf and a subtree")
        node[last] = leaf
    return _lists_from_int_keys(root)


def map_with_path(f, tree, prefix=""):
    """Like `tree_map(f, tree)` but f(path, leaf) also gets the leaf's `flatten` path."""
    if isinstance(tree, dict):
        return {k: map_with_path(f, v, f"{prefix}{SEP}{k}" if prefix else str(k))
                for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(map_with_path(f, v, f"{prefix}{SEP}{i}" if prefix else str(i))
                          for i, v in enumerate(tree))
    return f(prefix, tree)


def tree_map(f, *trees):
    """Apply `f` leaf-wise: f(leaf_of_tree0, leaf_of_tree1, ...), keeping the first's structure.

    All trees must have the same structure (same dict keys, same list lengths).
    """
    first = trees[0]
    if isinstance(first, dict):
        for t in trees[1:]:
            if not isinstance(t, dict) or t.keys() != first.keys():
                raise ValueError(f"tree_map: dict keys differ: expected {sorted(first)}, "
                                 f"found {sorted(t) if isinstance(t, dict) else type(t).__name__}")
        return {k: tree_map(f, *(t[k] for t in trees)) for k in first}
    if isinstance(first, (list, tuple)):
        for t in trees[1:]:
            if not isinstance(t, (list, tuple)) or len(t) != len(first):
                raise ValueError(f"tree_map: expected a list of length {len(first)}, "
                                 f"found {type(t).__name__} {getattr(t, '__len__', lambda: '')()}")
        return type(first)(tree_map(f, *leaves) for leaves in zip(*trees))
    return f(*trees)


def leaves(params):
    """The leaves of a tree as a list, in `flatten` order (a bare array is its own leaf)."""
    return list(flatten(params).values()) if _is_node(params) else [params]


def count_params(params):
    """Total number of scalars in a tree."""
    return int(sum(np.size(x) for x in leaves(params)))
