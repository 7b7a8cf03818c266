"""Safe arithmetic expressions for case files (never ``eval``).

An expression is parsed with :mod:`ast` and checked node by node against a
small language: numbers, the variables the context offers (coordinates, time,
sample index), the constants ``pi`` and ``e``, the operators
``+ - * / ** ^ %`` (``^`` means power), comparisons, and a fixed list of math
functions. Anything else (attributes, subscripts, lambdas, keyword arguments,
strings, unknown names) is rejected with a message saying what and where.
The checked tree is turned into nested numpy closures and evaluated on arrays.
"""
import ast
import difflib
import operator
import warnings

import numpy as np
from scipy import special

from .errors import ExpressionError


def _heaviside(x):
    return np.heaviside(x, 0.5)


FUNCTIONS = {
    "sin": np.sin, "cos": np.cos, "tan": np.tan,
    "arcsin": np.arcsin, "arccos": np.arccos, "arctan": np.arctan, "arctan2": np.arctan2,
    "asin": np.arcsin, "acos": np.arccos, "atan": np.arctan, "atan2": np.arctan2,
    "sinh": np.sinh, "cosh": np.cosh, "tanh": np.tanh,
    "exp": np.exp, "log": np.log, "log10": np.log10, "log2": np.log2, "sqrt": np.sqrt,
    "abs": np.abs, "sign": np.sign, "floor": np.floor, "ceil": np.ceil,
    "erf": special.erf, "erfc": special.erfc, "gamma": special.gamma,
    "min": np.minimum, "max": np.maximum, "where": np.where,
    "heaviside": _heaviside, "relu": lambda x: np.maximum(x, 0.0),
    "sigmoid": special.expit, "hypot": np.hypot, "mod": np.mod,
}
ARITY = {"arctan2": 2, "atan2": 2, "min": 2, "max": 2, "where": 3, "hypot": 2, "mod": 2}
CONSTANTS = {"pi": np.pi, "e": np.e, "inf": np.inf}

_BINARY = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv, ast.Pow: np.power, ast.Mod: np.mod,
}
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg}
_COMPARE = {
    ast.Lt: np.less, ast.LtE: np.less_equal, ast.Gt: np.greater,
    ast.GtE: np.greater_equal, ast.Eq: np.equal, ast.NotEq: np.not_equal,
}


#: longest expression text accepted, and deepest nesting of its syntax tree (the closures
#: evaluating it recurse once per level)
MAX_LENGTH = 20000
MAX_DEPTH = 100


def _short(text, width=60):
    """``text`` quoted for a one-line message, cut to about ``width`` characters."""
    text = str(text)
    if len(text) <= width:
        return repr(text)
    return repr(" ".join(text.split())[:width]) + f"... ({len(text)} characters)"


#: operators chained left to right, counted as one level however long the chain
#: (``a + b - c + ...`` is a sum of many terms, not a deep tree)
_CHAINS = ((ast.Add, ast.Sub), (ast.Mult, ast.Div))


def _chain(node):
    """``a op b op c ...`` of one family (+/- or * and /), read without recursion: the list
    ``[(None, a), (op, b), (op, c), ...]`` in evaluation order, or None for any other node."""
    if not isinstance(node, ast.BinOp):
        return None
    for family in _CHAINS:
        if isinstance(node.op, family):
            items = []
            while isinstance(node, ast.BinOp) and isinstance(node.op, family):
                items.append((node.op, node.right))
                node = node.left
            items.append((None, node))
            return items[::-1]
    return None


def _children(node):
    chain = _chain(node)
    return [operand for _, operand in chain] if chain else list(ast.iter_child_nodes(node))


def _depth(root):
    """Depth of an AST, without recursion (a deep tree must not exhaust the stack here); a
    chain of sums or of products counts as one level."""
    deepest, stack = 0, [(root, 1)]
    while stack:
        node, d = stack.pop()
        deepest = max(deepest, d)
        if d > MAX_DEPTH:
            break
        stack.extend((child, d + 1) for child in _children(node))
    return deepest


def _power(base, exponent):
    # float power so that integer bases with negative exponents work
    return np.power(np.asarray(base, dtype=float), exponent)


class Expression:
    """A checked expression over a fixed set of variable names.

    >>> Expression("exp(-x^2/2)", ["x"])(x=np.array([0.0]))
    array([1.])
    """

    def __init__(self, text, variables=(), key=None, source=None):
        if isinstance(text, (int, float)) and not isinstance(text, bool):
            text = repr(float(text))
        self.key, self.source = key, source
        if not isinstance(text, str):
            raise ExpressionError(self._where(f"expected a string or number, got {type(text).__name__}"))
        self.text = text
        self.variables = tuple(variables)
        if len(text) > MAX_LENGTH:
            raise ExpressionError(self._where(f"{len(text)} characters is too long for an expression "
                                              f"(at most {MAX_LENGTH}): {_short(text)}"))
        try:
            # '^' means power; rewriting it before parsing gives it the precedence of '**'
            # (quietly: Python's SyntaxWarnings, e.g. "invalid decimal literal" for '1if', would
            # print a second line)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", SyntaxWarning)
                warnings.simplefilter("ignore", DeprecationWarning)
                tree = ast.parse(text.strip().replace("^", "**"), mode="eval")
        except SyntaxError as exc:
            why = f" ({exc.msg[:80]})" if exc.msg and exc.msg != "invalid syntax" else ""
            raise ExpressionError(self._where(f"syntax error at column {exc.offset}{why}: {_short(text)}")) from None
        except (RecursionError, MemoryError):
            raise ExpressionError(self._where(f"too long or nested too deeply to parse: {_short(text)}")) from None
        except ValueError as exc:  # e.g. a number with more digits than Python converts
            raise ExpressionError(self._where(f"cannot parse {_short(text)}: {exc}")) from None
        depth = _depth(tree.body)
        if depth > MAX_DEPTH:
            raise ExpressionError(self._where(f"nested {depth} levels deep (at most {MAX_DEPTH}): {_short(text)}"))
        self.names = set()
        self._fn = self._compile(tree.body)

    def _where(self, msg):
        where = ": ".join(p for p in (self.source, self.key) if p)
        return f"{where}: {msg}" if where else msg

    def _reject(self, node, what):
        col = getattr(node, "col_offset", None)
        at = f" at column {col + 1}" if col is not None else ""
        raise ExpressionError(self._where(f"{what}{at} is not allowed in {_short(self.text)}"))

    def _compile(self, node):
        if isinstance(node, ast.Constant):
            if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
                self._reject(node, f"constant {node.value!r}")
            try:
                value = float(node.value)
            except OverflowError:
                self._reject(node, "a number beyond the floating-point range")
            return lambda env: value
        if isinstance(node, ast.Name):
            name = node.id
            if name in self.variables:
                self.names.add(name)
                return lambda env: env[name]
            if name in CONSTANTS:
                value = CONSTANTS[name]
                return lambda env: value
            known = list(self.variables) + list(CONSTANTS)
            hint = difflib.get_close_matches(name, known + list(FUNCTIONS), n=1)
            hint = f" (did you mean {hint[0]!r}?)" if hint else ""
            allowed = ", ".join(self.variables) or "none"
            raise ExpressionError(self._where(
                f"unknown name {name!r} in {_short(self.text)}{hint}; variables here: {allowed}"))
        chain = _chain(node)
        if chain is not None and len(chain) > 2:
            # evaluated left to right, as the nested tree would be, in a loop instead of a
            # recursion per term
            first = self._compile(chain[0][1])
            rest = [(_BINARY[type(op)], self._compile(operand)) for op, operand in chain[1:]]

            def fold(env):
                value = first(env)
                for op, term in rest:
                    value = op(value, term(env))
                return value
            return fold
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            left, right = self._compile(node.left), self._compile(node.right)
            op = _power if isinstance(node.op, ast.Pow) else _BINARY[type(node.op)]
            return lambda env: op(left(env), right(env))
        if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
            operand, op = self._compile(node.operand), _UNARY[type(node.op)]
            return lambda env: op(operand(env))
        if isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in _COMPARE:
            left, right = self._compile(node.left), self._compile(node.comparators[0])
            op = _COMPARE[type(node.ops[0])]
            return lambda env: op(left(env), right(env)).astype(float)
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name):
                self._reject(node, "calling anything but a named math function")
            name = node.func.id
            if name not in FUNCTIONS:
                hint = difflib.get_close_matches(name, list(FUNCTIONS), n=1)
                hint = f" (did you mean {hint[0]!r}?)" if hint else ""
                raise ExpressionError(self._where(
                    f"undefined function {name!r} in {_short(self.text)}{hint}"))
            if node.keywords:
                self._reject(node, "keyword arguments")
            if any(isinstance(a, ast.Starred) for a in node.args):
                self._reject(node, "argument unpacking")
            want = ARITY.get(name, 1)
            if len(node.args) != want:
                raise ExpressionError(self._where(
                    f"{name}() takes {want} argument{'s' * (want > 1)}, got {len(node.args)} in {_short(self.text)}"))
            args = [self._compile(a) for a in node.args]
            fn = FUNCTIONS[name]
            return lambda env: fn(*(a(env) for a in args))
        if isinstance(node, ast.Attribute):
            self._reject(node, f"attribute access '.{node.attr}'")
        if isinstance(node, ast.Subscript):
            self._reject(node, "subscripting")
        self._reject(node, f"'{type(node).__name__}'")

    def __call__(self, shape=None, **env):
        """The values for the variables in ``env`` (arrays broadcast to ``shape``); an
        :class:`ExpressionError` naming the key when they are not finite or cannot be computed."""
        missing = self.names - set(env)
        if missing:
            raise ExpressionError(self._where(f"no value for {sorted(missing)} when evaluating {_short(self.text)}"))
        try:
            # values as float arrays: a Python list would add by concatenation ([2.0] + [2.0])
            env = {k: v if isinstance(v, np.ndarray) else np.asarray(v, dtype=float) for k, v in env.items()}
            with np.errstate(all="ignore"):
                out = np.asarray(self._fn(env), dtype=float)
            if shape is None:
                shape = np.broadcast_shapes(*(np.shape(env[n]) for n in env)) if env else ()
            out = np.broadcast_to(out, np.broadcast_shapes(out.shape, tuple(shape))).copy()
        except (ArithmeticError, ValueError, TypeError, MemoryError, RecursionError) as exc:
            raise ExpressionError(self._where(f"cannot evaluate {_short(self.text)}: "
                                              f"{type(exc).__name__}: {exc}")) from None
        if not np.all(np.isfinite(out)):
            bad = np.count_nonzero(~np.isfinite(out))
            raise ExpressionError(self._where(
                f"{_short(self.text)} gives non-finite values (NaN or inf) at {bad} of {out.size} points"))
        return out

    def __repr__(self):
        return f"Expression({self.text!r})"


def coordinate_names(prefix, ndim):
    """Names of the coordinates of an ``ndim`` mesh: ``x`` in 1-D, ``x1, x2, ...`` otherwise.

    In 1-D both ``x`` and ``x1`` are accepted.
    """
    return (prefix, f"{prefix}1") if ndim == 1 else tuple(f"{prefix}{d + 1}" for d in range(ndim))


def coordinate_env(prefix, arrays):
    """Variables for coordinate ``arrays`` (one per dimension) named as in :func:`coordinate_names`."""
    if len(arrays) == 1:
        return {prefix: arrays[0], f"{prefix}1": arrays[0]}
    return {f"{prefix}{d + 1}": a for d, a in enumerate(arrays)}


class InputExpression(Expression):
    """A numpy array or a Python callable given where a case expects an expression
    (``pdenet.Case.from_dict``); evaluated like an :class:`Expression`, with the same checks.

    * an **array** holds the values at the points where the model evaluates the key on its mesh
      (cell centres): it must have (or broadcast to) the shape of those points; a key the model
      also evaluates elsewhere (faces, particle positions) needs an expression or a callable;
    * a **callable** is called with the variables it names as keyword arguments (its parameters
      must be among the key's variables, or be ``**kwargs``) and returns an array.

    Nothing is evaluated from text: no parsing, no ``eval``. ``values`` keeps the first values
    computed (on the mesh, during validation), which the runner stores in ``/inputs``.
    """

    def __init__(self, value, variables, key=None, source=None):
        import inspect

        self.key, self.source = key, source
        self.variables = tuple(variables)
        self.value = value
        self.values = None
        if callable(value):
            self.text = f"<function {getattr(value, '__qualname__', type(value).__name__)}>"
            try:
                params = inspect.signature(value).parameters.values()
            except (TypeError, ValueError):
                raise ExpressionError(self._where(f"cannot inspect the arguments of {self.text}")) from None
            self._kwargs = any(p.kind is p.VAR_KEYWORD for p in params)
            named = [p for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
            unknown = [p.name for p in named if p.name not in self.variables and p.default is p.empty]
            if unknown or any(p.kind is p.VAR_POSITIONAL for p in params):
                allowed = ", ".join(self.variables) or "none"
                raise ExpressionError(self._where(
                    f"{self.text} takes {', '.join(unknown) or '*args'}; it may take only the "
                    f"variables here as keyword arguments: {allowed}"))
            self.names = set(self.variables) if self._kwargs else {p.name for p in named if p.name in self.variables}
        else:
            arr = np.asarray(value)
            if arr.dtype.kind not in "biuf":
                raise ExpressionError(self._where(f"expected a numeric array, got dtype {arr.dtype}"))
            self.value = arr.astype(float)
            self.text = f"<array {arr.shape}>"
            self.names = set()

    def __call__(self, shape=None, **env):
        missing = self.names - set(env)
        if missing:
            raise ExpressionError(self._where(f"no value for {sorted(missing)} when evaluating {self.text}"))
        points = np.broadcast_shapes(*(np.shape(env[n]) for n in env)) if env else ()
        target = tuple(shape) if shape is not None else points
        if callable(self.value):
            try:
                with np.errstate(all="ignore"):
                    out = np.asarray(self.value(**{n: env[n] for n in self.names}), dtype=float)
            except ExpressionError:
                raise
            except Exception as exc:   # the user's function: its error, in one line
                raise ExpressionError(self._where(f"{self.text} raised {type(exc).__name__}: {exc}")) from None
        else:
            out = self.value
            try:
                fits = out.shape == target or np.broadcast_shapes(out.shape, points) == points
            except ValueError:
                fits = False
            if env and not fits:
                raise ExpressionError(self._where(
                    f"an array of shape {out.shape} where the values at points of shape {points} are needed "
                    "(an array gives the values at the mesh points; use a callable for other points)"))
        try:
            out = np.broadcast_to(out, np.broadcast_shapes(out.shape, target)).copy()
        except ValueError:
            raise ExpressionError(self._where(f"{self.text} gives shape {out.shape}, expected {target}")) from None
        if not np.all(np.isfinite(out)):
            bad = np.count_nonzero(~np.isfinite(out))
            raise ExpressionError(self._where(
                f"{self.text} gives non-finite values (NaN or inf) at {bad} of {out.size} points"))
        if self.values is None:
            self.values = out.copy()
        return out

    def __repr__(self):
        return f"InputExpression({self.text})"
