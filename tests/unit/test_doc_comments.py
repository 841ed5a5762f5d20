"""ecc.doc_comments: the §5 grammar, attachment, candidates, lexing, @cmdarg checks."""

from __future__ import annotations

import time
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ecc.doc_comments import (
    Diagnostic,
    DocComment,
    extract_doc_comments,
    parse_comment_body,
    validate_cmdargs,
)
from ecc.errors import AnnotationError


def numbered(*texts: str, start: int = 1) -> list[tuple[int, str]]:
    return [(start + index, text) for index, text in enumerate(texts)]


def summary(source: str) -> list[tuple[int, int, tuple[str, ...], dict[str, Any]]]:
    return [
        (doc.line, doc.decl_line, doc.candidates, dict(doc.annotations))
        for doc in extract_doc_comments(source)
    ]


def W(line: int, message: str) -> Diagnostic:
    return Diagnostic(line, message)


# ---------------------------------------------------------------------------
# The grammar of a comment body (spec §5)

GRAMMAR_CASES = [
    pytest.param(["@ifindex 1"], {"ifindex": 1}, {"ifindex": 1}, [], id="json-number"),
    pytest.param(
        ['@xdpopts {"old_prog_fd": 0}'],
        {"xdpopts": {"old_prog_fd": 0}},
        {"xdpopts": 1},
        [],
        id="json-object",
    ),
    pytest.param(['@unit "usecs"'], {"unit": "usecs"}, {"unit": 1}, [], id="json-string"),
    pytest.param(
        ["@clear_map false", "@value null", "@ratio -1.5e3"],
        {"clear_map": False, "value": None, "ratio": -1500.0},
        {"clear_map": 1, "value": 2, "ratio": 3},
        [],
        id="json-literals",
    ),
    pytest.param(
        ["@unit   usecs per call  "],
        {"unit": "usecs per call"},
        {"unit": 1},
        [W(1, "'@unit' value is not JSON, kept as a string: usecs per call")],
        id="not-json-kept-trimmed",
    ),
    pytest.param(
        ["@verbose", "@quiet   "],
        {"verbose": True, "quiet": True},
        {"verbose": 1, "quiet": 2},
        [],
        id="bare-key-true",
    ),
    pytest.param(
        ["@sample {", '  "interval": 1000,', '  "type": "log2_hist"', "}", "@flags 0"],
        {"sample": {"interval": 1000, "type": "log2_hist"}, "flags": 0},
        {"sample": 1, "flags": 5},
        [],
        id="multi-line-object",
    ),
    pytest.param(
        ["@list [1,", "", "  [2, 3],", "  4]"],
        {"list": [1, [2, 3], 4]},
        {"list": 1},
        [],
        id="multi-line-array-with-empty-line",
    ),
    pytest.param(
        ['@a {"s": "}{[",', '"t": 1}'],
        {"a": {"s": "}{[", "t": 1}},
        {"a": 1},
        [],
        id="brackets-inside-json-strings",
    ),
    pytest.param(
        ['@a {"s": "q\\"}"}'],
        {"a": {"s": 'q"}'}},
        {"a": 1},
        [],
        id="escaped-quote-inside-json-string",
    ),
    pytest.param(
        ['@a {"x": 1', "@b 2"],
        {"a": '{"x": 1\n@b 2'},
        {"a": 1},
        [W(1, "'@a' JSON value is not closed")],
        id="json-never-closed",
    ),
    pytest.param(
        ['@a {"x": 1,}'],
        {"a": '{"x": 1,}'},
        {"a": 1},
        [W(1, "'@a' value is not JSON, kept as a string: {\"x\": 1,}")],
        id="json-closed-but-invalid",
    ),
    pytest.param(
        ["@a [1]  extra"],
        {"a": "[1]  extra"},
        {"a": 1},
        [W(1, "'@a' value is not JSON, kept as a string: [1]  extra")],
        id="text-after-closing-bracket",
    ),
    pytest.param(
        ["@a [1,", "2"],
        {"a": "[1,\n2"},
        {"a": 1},
        [W(1, "'@a' JSON value is not closed")],
        id="json-closed-by-end-of-comment-never",
    ),
    pytest.param(
        ["@a NaN", "@b Infinity", "@c 1e999"],
        {"a": "NaN", "b": "Infinity", "c": "1e999"},
        {"a": 1, "b": 2, "c": 3},
        [
            W(1, "'@a' value is not JSON, kept as a string: NaN"),
            W(2, "'@b' value is not JSON, kept as a string: Infinity"),
            W(3, "'@c' value is not JSON, kept as a string: 1e999"),
        ],
        id="non-standard-numbers-are-strings",
    ),
    pytest.param(
        ["Process ID to trace"],
        {"description": "Process ID to trace"},
        {"description": 1},
        [],
        id="plain-text-description",
    ),
    pytest.param(
        ["  Process ID  ", "to trace"],
        {"description": "Process ID to trace"},
        {"description": 1},
        [],
        id="plain-lines-joined-with-one-space",
    ),
    pytest.param(["42"], {"description": 42}, {"description": 1}, [], id="plain-text-json"),
    pytest.param(
        ["[1,", "2]"], {"description": [1, 2]}, {"description": 1}, [], id="plain-joined-json"
    ),
    pytest.param(
        ["first", "@a 1", "second part"],
        {"description": "first second part", "a": 1},
        {"description": 1, "a": 2},
        [],
        id="plain-groups-all-kept",
    ),
    pytest.param(
        ["", "   ", "text", ""],
        {"description": "text"},
        {"description": 3},
        [],
        id="empty-lines-skipped",
    ),
    pytest.param([], {}, {}, [], id="empty-comment"),
    pytest.param(
        ["@description target pid to trace"],
        {"description": "target pid to trace"},
        {"description": 1},
        [],
        id="explicit-description-prose-without-warning",
    ),
    pytest.param(
        ['@description "quoted"'],
        {"description": "quoted"},
        {"description": 1},
        [],
        id="explicit-description-json",
    ),
    pytest.param(
        ["plain words", "@description explicit"],
        {"description": "explicit"},
        {"description": 2},
        [],
        id="explicit-description-beats-plain-after",
    ),
    pytest.param(
        ["@description explicit", "plain words"],
        {"description": "explicit"},
        {"description": 1},
        [],
        id="explicit-description-beats-plain-before",
    ),
    pytest.param(
        ["@description one", "@description two"],
        {"description": "two"},
        {"description": 2},
        [W(2, "'@description' given twice; the later value is kept")],
        id="explicit-description-twice",
    ),
    pytest.param(
        ["@ foo", "@1 bar", "@-x baz"],
        {"description": "@ foo @1 bar @-x baz"},
        {"description": 1},
        [],
        id="invalid-keys-are-plain-text",
    ),
    pytest.param(
        ['@cmdarg{"short": "p"}'],
        {"description": '@cmdarg{"short": "p"}'},
        {"description": 1},
        [],
        id="key-needs-a-blank-before-its-value",
    ),
    pytest.param(
        ["@my-key_2 3", "@_x"],
        {"my-key_2": 3, "_x": True},
        {"my-key_2": 1, "_x": 2},
        [],
        id="key-charset",
    ),
    pytest.param(
        ["@a 1", "@b 2", "@a 3"],
        {"a": 3, "b": 2},
        {"a": 3, "b": 2},
        [W(3, "'@a' given twice; the later value is kept")],
        id="key-twice-later-wins",
    ),
    pytest.param(
        ['@unit "µs"', "Tracé ünïcödé 😀 текст", "@note 漢字"],
        {"unit": "µs", "description": "Tracé ünïcödé 😀 текст", "note": "漢字"},
        {"unit": 1, "description": 2, "note": 3},
        [W(3, "'@note' value is not JSON, kept as a string: 漢字")],
        id="unicode",
    ),
    pytest.param(
        ["@brief demo", "@version 0.1"],
        {"brief": "demo", "version": 0.1},
        {"brief": 1, "version": 2},
        [W(1, "'@brief' value is not JSON, kept as a string: demo")],
        id="doc-keys-off-by-default",
    ),
]


@pytest.mark.parametrize(("texts", "annotations", "keys_lines", "warnings"), GRAMMAR_CASES)
def test_grammar(
    texts: list[str],
    annotations: dict[str, Any],
    keys_lines: dict[str, int],
    warnings: list[Diagnostic],
) -> None:
    got = parse_comment_body(numbered(*texts))
    assert got == (annotations, keys_lines, warnings)
    assert list(got[0]) == list(annotations)  # keys keep source order


DOC_KEY_CASES = [
    pytest.param(
        [
            "@brief BPF bootstrap demo application.",
            "@details It traces process start",
            "",
            "and exits.",
            "@version 0.1",
        ],
        {
            "brief": "BPF bootstrap demo application.",
            "details": "It traces process start\nand exits.",
            "version": "0.1",
        },
        {"brief": 1, "details": 2, "version": 5},
        [],
        id="license-keys",
    ),
    pytest.param(
        ["Summary line", "@brief", "  spans", "  @ two lines  ", "@flags 1"],
        {"description": "Summary line", "brief": "spans\n@ two lines", "flags": 1},
        {"description": 1, "brief": 2, "flags": 5},
        [],
        id="brief-text-until-next-command",
    ),
    pytest.param(
        ["@brief", "@version"],
        {"brief": "", "version": ""},
        {"brief": 1, "version": 2},
        [],
        id="empty-doc-keys-are-empty-strings",
    ),
    pytest.param(
        ["@brief a", "@brief b", "@license GPL"],
        {"brief": "b", "license": "GPL"},
        {"brief": 2, "license": 3},
        [
            W(2, "'@brief' given twice; the later value is kept"),
            W(3, "'@license' value is not JSON, kept as a string: GPL"),
        ],
        id="other-keys-follow-normal-rules",
    ),
]


@pytest.mark.parametrize(("texts", "annotations", "keys_lines", "warnings"), DOC_KEY_CASES)
def test_doc_keys(
    texts: list[str],
    annotations: dict[str, Any],
    keys_lines: dict[str, int],
    warnings: list[Diagnostic],
) -> None:
    assert parse_comment_body(numbered(*texts), doc_keys=True) == (
        annotations,
        keys_lines,
        warnings,
    )


def test_warning_lines_are_source_lines() -> None:
    annotations, keys_lines, warnings = parse_comment_body(numbered("@a x", "@a {", start=40))
    assert annotations == {"a": "{"}
    assert keys_lines == {"a": 41}
    assert warnings == [
        W(40, "'@a' value is not JSON, kept as a string: x"),
        W(41, "'@a' JSON value is not closed"),
        W(41, "'@a' given twice; the later value is kept"),
    ]


def test_deeply_nested_json_is_kept_as_string() -> None:
    value = "[" * 100_000 + "]" * 100_000
    annotations, _, warnings = parse_comment_body([(1, "@a " + value)])
    assert annotations == {"a": value}
    assert warnings == [W(1, f"'@a' value is not JSON, kept as a string: {value}")]


# ---------------------------------------------------------------------------
# Spec §5 examples, end to end


def test_spec_examples() -> None:
    source = """\
#include "vmlinux.h"

/// @sample {"interval": 1000, "type": "log2_hist", "unit": "usecs"}
struct {
\t__uint(type, BPF_MAP_TYPE_HASH);
\t__type(key, u32);
\t__type(value, struct hist);
} hists SEC(".maps");

/// @cmdarg {"default": 0, "short": "p", "long": "pid"}
/// @description target pid to trace
const volatile int target_pid = 0;

/// Process ID to trace
const volatile pid_t targ_pid = 0;

/// @ifindex 1
/// @flags 0
/// @xdpopts {"old_prog_fd": 0}
SEC("xdp") int xdp_pass(struct xdp_md *ctx) { return XDP_PASS; }

/// @brief BPF bootstrap demo application.
/// @details It traces process start and exits.
/// @version 0.1
char LICENSE[] SEC("license") = "Dual BSD/GPL";
"""
    docs = extract_doc_comments(source)
    assert summary(source) == [
        (3, 4, ("hists",), {"sample": {"interval": 1000, "type": "log2_hist", "unit": "usecs"}}),
        (
            10,
            12,
            ("target_pid",),
            {
                "cmdarg": {"default": 0, "short": "p", "long": "pid"},
                "description": "target pid to trace",
            },
        ),
        (14, 15, ("targ_pid",), {"description": "Process ID to trace"}),
        (17, 20, ("xdp_pass",), {"ifindex": 1, "flags": 0, "xdpopts": {"old_prog_fd": 0}}),
        (
            22,
            25,
            ("LICENSE",),
            {
                "brief": "BPF bootstrap demo application.",
                "details": "It traces process start and exits.",
                "version": "0.1",
            },
        ),
    ]
    assert all(doc.warnings == () for doc in docs)
    assert docs[1].keys_lines == {"cmdarg": 10, "description": 11}
    assert docs[3].lines == (
        (17, " @ifindex 1"),
        (18, " @flags 0"),
        (19, ' @xdpopts {"old_prog_fd": 0}'),
    )


def test_warnings_travel_with_the_comment() -> None:
    (doc,) = extract_doc_comments('\n/// @unit usecs\n/// @unit "ms"\nint x;\n')
    assert doc.annotations == {"unit": "ms"}
    assert doc.warnings == (
        W(2, "'@unit' value is not JSON, kept as a string: usecs"),
        W(3, "'@unit' given twice; the later value is kept"),
    )


def test_doc_comment_is_frozen_and_hashable() -> None:
    (doc,) = extract_doc_comments("/// @a 1\nint x;\n")
    assert isinstance(doc, DocComment)
    with pytest.raises(AttributeError):
        doc.line = 3  # type: ignore[misc]
    assert hash(doc) == hash(extract_doc_comments("/// @a 1\nint x;\n")[0])


# ---------------------------------------------------------------------------
# Which comments are doc comments, and what they attach to

ATTACH_CASES = [
    pytest.param(
        "/// a\n/// b\nint x;\n", [(1, 3, ("x",), {"description": "a b"})], id="slash-run"
    ),
    pytest.param(
        "/**\n * @a 1\n *   @b [1,\n *  2]\n * text\n **/\nint x;\n",
        [(1, 7, ("x",), {"a": 1, "b": [1, 2], "description": "text"})],
        id="javadoc-leading-stars",
    ),
    pytest.param(
        "/** @a 1\n    @b 2 */\nint x;\n",
        [(1, 3, ("x",), {"a": 1, "b": 2})],
        id="javadoc-without-stars",
    ),
    pytest.param("/** @a 1 */ int x;\n", [(1, 1, ("x",), {"a": 1})], id="javadoc-same-line"),
    pytest.param("/// a\n\nint x;\n", [], id="blank-line-detaches"),
    pytest.param("/** a */\n\t \nint x;\n", [], id="whitespace-only-line-detaches"),
    pytest.param(
        "/// lost\n\n/// kept\nint x;\n",
        [(3, 4, ("x",), {"description": "kept"})],
        id="blank-line-splits-a-run",
    ),
    pytest.param("// plain\nint x;\n/* plain */\nint y;\n", [], id="plain-comments-are-not-doc"),
    pytest.param("/// doc\n// plain\nint x;\n", [], id="plain-comment-in-between-detaches"),
    pytest.param("//// banner\nint x;\n", [], id="four-slashes-not-doc"),
    pytest.param(
        "/////\n/// doc\nint x;\n", [(2, 3, ("x",), {"description": "doc"})], id="banner-then-doc"
    ),
    pytest.param(
        "/**/\nint x;\n/***\n * @a 1\n */\nint y;\n", [], id="empty-and-banner-blocks-not-doc"
    ),
    pytest.param("int a;\n///< trailing\nint b;\n", [], id="trailing-form-unsupported"),
    pytest.param("/// doc\n#define X 1\nint x;\n", [], id="preprocessor-line-detaches"),
    pytest.param('/// doc\n#include "x.h"\nint x;\n', [], id="include-detaches"),
    pytest.param("/// doc\n#if 0\nint y;\n#endif\nint x;\n", [], id="if0-block-detaches"),
    pytest.param("int x;\n/// at the end", [], id="doc-at-end-of-file"),
    pytest.param("/// doc\n;\nint x;\n", [], id="empty-declaration-takes-nothing"),
    pytest.param(
        "int f(void)\n{\n\t/// inside\n\tint x;\n\treturn 0;\n}\n",
        [],
        id="inside-function-body",
    ),
    pytest.param(
        'struct {\n\t/// member\n\t__uint(type, BPF_MAP_TYPE_HASH);\n} m SEC(".maps");\n',
        [],
        id="inside-struct-body",
    ),
    pytest.param(
        'SEC("xdp")\n/// inside the declaration\nint f(void) { return 0; }\n',
        [],
        id="inside-declaration-head",
    ),
    pytest.param(
        "/** old */\n/// new\nint x;\n",
        [(2, 3, ("x",), {"description": "new"})],
        id="last-comment-unit-wins",
    ),
    pytest.param(
        "int a; /// b\n/// more\nint b;\n",
        [(1, 3, ("b",), {"description": "b more"})],
        id="run-starting-after-code",
    ),
    pytest.param(
        "/// one\nint a;\n/// two\nint f(void) { return 0; }\n/// three\nint c;\n",
        [
            (1, 2, ("a",), {"description": "one"}),
            (3, 4, ("f",), {"description": "two"}),
            (5, 6, ("c",), {"description": "three"}),
        ],
        id="consecutive-declarations",
    ),
    pytest.param(
        "/// a\nint f(void) { if (x) { y(); } }\n/// b\nint g;\n",
        [(1, 2, ("f",), {"description": "a"}), (3, 4, ("g",), {"description": "b"})],
        id="function-body-needs-no-semicolon",
    ),
    pytest.param(
        "/// x\nint\nmultiline\n=\n1;\n",
        [(1, 2, ("multiline",), {"description": "x"})],
        id="declaration-over-lines",
    ),
]


@pytest.mark.parametrize(("source", "expected"), ATTACH_CASES)
def test_attachment(
    source: str, expected: list[tuple[int, int, tuple[str, ...], dict[str, Any]]]
) -> None:
    assert summary(source) == expected


# ---------------------------------------------------------------------------
# Candidates: which identifier the declaration declares

CANDIDATE_CASES = [
    # libbpf wrapper macros: the first argument is the program
    (
        'SEC("kprobe/do_unlinkat")\nint BPF_KPROBE(do_unlinkat, int dfd, struct filename *name)\n'
        "{\n\treturn 0;\n}",
        ("do_unlinkat",),
    ),
    (
        'SEC("kretprobe/do_unlinkat")\nint BPF_KRETPROBE(do_unlinkat_exit, long ret)\n{\n}',
        ("do_unlinkat_exit",),
    ),
    (
        'SEC("ksyscall/openat")\n'
        "int BPF_KSYSCALL(entry_probe, int dfd, const char *pathname)\n{\n}",
        ("entry_probe",),
    ),
    ('SEC("uprobe")\nint BPF_UPROBE(uprobe_add, int a, int b)\n{\n}', ("uprobe_add",)),
    ('SEC("uretprobe")\nint BPF_URETPROBE(uretprobe_add, int ret)\n{\n}', ("uretprobe_add",)),
    (
        'SEC("usdt")\nint BPF_USDT(usdt_auto_attach, void *arg1, int arg2, void *arg3)\n{\n}',
        ("usdt_auto_attach",),
    ),
    (
        'SEC("tp_btf/sched_wakeup")\nint BPF_PROG(sched_wakeup, struct task_struct *p)\n{\n}',
        ("sched_wakeup",),
    ),
    ('SEC("fentry/do_unlinkat")\nint BPF_PROG(no_args)\n{\n}', ("no_args",)),
    (
        'SEC("struct_ops/enqueue")\n'
        "void BPF_STRUCT_OPS(simple_enqueue, struct task_struct *p, u64 flags)\n{\n}",
        ("simple_enqueue",),
    ),
    # an unknown UPPER_CASE macro used as declarator
    ('SEC("kprobe/x")\nint MY_PROBE(my_prog, int x)\n{\n}', ("my_prog",)),
    ("BPF_HASH(counts, u32, u64);", ("counts",)),
    # ...but an upper-case function with a real parameter list is a function
    ("int XDP_PROG(struct xdp_md *ctx)\n{\n}", ("XDP_PROG",)),
    # plain functions, SEC before or on its own line, attributes, specifiers
    (
        'SEC("tp/sched/sched_process_exec")\n'
        "int handle_exec(struct trace_event_raw_sched_process_exec *ctx)\n{\n}",
        ("handle_exec",),
    ),
    ('SEC("xdp") int xdp_pass(struct xdp_md *ctx) { return XDP_PASS; }', ("xdp_pass",)),
    (
        'int __attribute__((noinline)) tc_ingress(struct __sk_buff *skb) SEC("tc")\n{\n}',
        ("tc_ingress",),
    ),
    ("static __always_inline int helper(u32 pid)\n{\n}", ("helper",)),
    ("static __noinline struct task_struct *get_task(void)\n{\n}", ("get_task",)),
    ("int kr_style(ctx)\n{\n}", ("kr_style", "ctx")),
    ("int my_wrap(prog_name, int x)\n{\n}", ("my_wrap", "prog_name")),
    ("int proto(int);", ("proto",)),
    # variables
    ("const volatile unsigned long long min_duration_ns = 0;", ("min_duration_ns",)),
    ('char LICENSE[] SEC("license") = "GPL";', ("LICENSE",)),
    ("const volatile struct foo *p;", ("p",)),
    ("char comm[16];", ("comm",)),
    ("char comm[TASK_COMM_LEN];", ("comm",)),
    ("int matrix[2][N];", ("matrix",)),
    ("int (*handler)(void *ctx);", ("handler",)),
    ("const volatile my_type_t threshold = 5;", ("threshold", "my_type_t")),
    ("int a, b;", ("a",)),
    ("static struct hist zero;", ("zero",)),
    ('__attribute__((section(".data.cfg"))) int cfg_value = 1;', ("cfg_value",)),
    ('int cfg2 SEC(".data.cfg") = 1;', ("cfg2",)),
    ("extern int LINUX_KERNEL_VERSION __kconfig;", ("LINUX_KERNEL_VERSION",)),
    ("extern const void bpf_prog_active __ksym;", ("bpf_prog_active",)),
    ("enum { MODE_A, MODE_B } mode;", ("mode",)),
    ("typeof(int) alias_var;", ("alias_var",)),
    ("const volatile bool verbose = false;", ("verbose",)),
    ("int café = 1;", ("café",)),
    # maps, both styles
    (
        "struct {\n\t__uint(type, BPF_MAP_TYPE_HASH);\n\t__type(key, u32);\n"
        '\t__type(value, u64);\n} my_map SEC(".maps");',
        ("my_map",),
    ),
    (
        "struct {\n\t__uint(type, BPF_MAP_TYPE_PROG_ARRAY);\n\t__array(values, int (void *));\n"
        '} jmp_table SEC(".maps") = {\n\t.values = { [0] = (void *)&tail },\n};',
        ("jmp_table",),
    ),
    (
        'struct bpf_map_def SEC("maps") old_map = {\n\t.type = BPF_MAP_TYPE_HASH,\n'
        "\t.max_entries = 1,\n};",
        ("old_map",),
    ),
    # nothing declared by name
    ("struct event;", ()),
    ("struct event {\n\tint pid;\n};", ()),
    ('_Static_assert(sizeof(int) == 4, "int");', ()),
]


@pytest.mark.parametrize(("declaration", "candidates"), CANDIDATE_CASES)
def test_candidates(declaration: str, candidates: tuple[str, ...]) -> None:
    (doc,) = extract_doc_comments("/// d\n" + declaration + "\n")
    assert doc.candidates == candidates
    assert (doc.line, doc.decl_line) == (1, 2)


def test_local_typedef_names_are_not_candidates() -> None:
    source = "typedef unsigned int my_u32;\n/// d\nconst volatile my_u32 limit = 1;\n"
    assert summary(source) == [(2, 3, ("limit",), {"description": "d"})]


def test_doc_on_typedef_names_the_typedef() -> None:
    assert summary("/// d\ntypedef struct { int a; } event_t;\n") == [
        (1, 2, ("event_t",), {"description": "d"})
    ]


def test_license_gets_doc_keys_other_declarations_do_not() -> None:
    source = (
        '/// @version 0.1\nchar LICENSE[] SEC("license") = "GPL";\n'
        "/// @version 0.1\nconst volatile int other = 0;\n"
    )
    assert summary(source) == [
        (1, 2, ("LICENSE",), {"version": "0.1"}),
        (3, 4, ("other",), {"version": 0.1}),
    ]


# ---------------------------------------------------------------------------
# Lexing: strings, continuations, the preprocessor, line endings

LEXING_CASES = [
    pytest.param(
        'char s[] = "/// not a doc /* nor a comment";\n/// doc\nint x;\n',
        [(2, 3, ("x",), {"description": "doc"})],
        id="comment-markers-in-strings",
    ),
    pytest.param(
        'char s[] = "a \\" /*";\n/// doc\nint x;\n',
        [(2, 3, ("x",), {"description": "doc"})],
        id="escaped-quote-in-string",
    ),
    pytest.param(
        "char q = '\"';\nchar a = '\\'';\n/// doc\nint x;\n",
        [(3, 4, ("x",), {"description": "doc"})],
        id="quotes-in-char-literals",
    ),
    pytest.param(
        "int f(void) { bpf_printk(\"}\"); return '{'; }\n/// doc\nint x;\n",
        [(2, 3, ("x",), {"description": "doc"})],
        id="braces-in-literals-do-not-count",
    ),
    pytest.param(
        "#define WRAP(x) \\\n\tdo { \\\n\t\tx; \\\n\t} while (0)\n/// doc\nint x;\n",
        [(5, 6, ("x",), {"description": "doc"})],
        id="continued-macro-definition",
    ),
    pytest.param(
        "/// doc\nconst volatile int \\\n  spliced = 0;\n/// next\nint y;\n",
        [(1, 2, ("spliced",), {"description": "doc"}), (4, 5, ("y",), {"description": "next"})],
        id="continued-declaration-keeps-line-numbers",
    ),
    pytest.param(
        "/// doc\n  #  define X 1\nint x;\n",
        [],
        id="indented-directive",
    ),
    pytest.param(
        "#if 0\n/// dead\nint dead;\n#endif\n/// live\nint live;\n",
        [(5, 6, ("live",), {"description": "live"})],
        id="if0",
    ),
    pytest.param(
        "#if 0\nit's { an unbalanced \"note\n#endif\n/// live\nint live;\n",
        [(4, 5, ("live",), {"description": "live"})],
        id="if0-with-junk",
    ),
    pytest.param(
        "#if 0\n#if 1\n/// a\nint a;\n#else\n/// b\nint b;\n#endif\n/// c\nint c;\n#endif\n/// d\n"
        "int d;\n",
        [(12, 13, ("d",), {"description": "d"})],
        id="if0-nested",
    ),
    pytest.param(
        "#if 0\n/// a\nint a;\n#else\n/// b\nint b;\n#endif\n",
        [(5, 6, ("b",), {"description": "b"})],
        id="if0-else-is-live",
    ),
    pytest.param(
        "#if 0\nint a;\n#elif 0\nint b;\n#elif FOO\n/// c\nint c;\n#else\n/// d\nint d;\n#endif\n",
        [(6, 7, ("c",), {"description": "c"}), (9, 10, ("d",), {"description": "d"})],
        id="if0-elif-chain",
    ),
    pytest.param(
        "#if 1\n/// a\nint a;\n#else\n/// b\nint b;\n#endif\n",
        [(2, 3, ("a",), {"description": "a"})],
        id="if1-else-is-dead",
    ),
    pytest.param(
        "#if (0) /* off */\n/// a\nint a;\n#endif\n#if 0x0 // off\n/// b\nint b;\n#endif\n"
        "#if ( (00UL) )\n/// c\nint c;\n#endif\n#if (0\n/// d\nint d;\n#endif\n",
        [(14, 15, ("d",), {"description": "d"})],
        id="if0-spellings",
    ),
    pytest.param(
        "#if 0\n/* #endif */\n#endif\n/// a\nint a;\n",
        [(4, 5, ("a",), {"description": "a"})],
        id="directive-in-comment-does-not-count",
    ),
    pytest.param(
        "int f(void)\n{\n#if 0\n}\n#endif\n\treturn 0;\n}\n/// a\nint a;\n",
        [(8, 9, ("a",), {"description": "a"})],
        id="if0-inside-function",
    ),
    pytest.param(
        "#ifdef BIG\nint f(int a) {\n#else\nint f(int a, int b) {\n#endif\n\treturn 0;\n}\n/// a\n"
        "int a;\n",
        [(8, 9, ("a",), {"description": "a"})],
        id="ifdef-branches-open-a-brace-each",
    ),
    pytest.param(
        "#ifdef __x86_64__\n/// x86\nint x;\n#else\n/// other\nint y;\n#endif\n",
        [(2, 3, ("x",), {"description": "x86"}), (5, 6, ("y",), {"description": "other"})],
        id="unknown-conditions-keep-both-branches",
    ),
    pytest.param(
        '/// kp\n#ifdef __x86_64__\nSEC("kprobe/__x64_sys_openat")\n#else\n'
        'SEC("kprobe/sys_openat")\n#endif\nint BPF_KPROBE(openat)\n{\n}\n',
        [],
        id="directive-inside-declaration-still-detaches",
    ),
    pytest.param(
        '/// kp\nSEC("kprobe/x")\n#ifdef __x86_64__\nint BPF_KPROBE(x86_prog)\n#else\n'
        "int BPF_KPROBE(other_prog)\n#endif\n{\n}\n",
        [(1, 2, ("x86_prog",), {"description": "kp"})],
        id="declaration-split-by-conditional",
    ),
    pytest.param(
        "/// doc\nint x\n#ifdef A\n = 1;\n#else\n = 2;\n#endif\n/// next\nint y;\n",
        [(1, 2, ("x",), {"description": "doc"}), (8, 9, ("y",), {"description": "next"})],
        id="declaration-ending-in-both-branches-reported-once",
    ),
    pytest.param(
        "/// doc\nint f(void)\n#ifdef A\n{ return 1; }\n#else\n{ return 2; }\n#endif\n"
        "/// g\nint g;\n",
        [(1, 2, ("f",), {"description": "doc"}), (8, 9, ("g",), {"description": "g"})],
        id="function-body-per-branch",
    ),
    pytest.param(
        "/// @a 1\r\n/// text\r\nint x;\r\n/** @b 2\r\n * more\r\n */\r\nint y;\r\n",
        [
            (1, 3, ("x",), {"a": 1, "description": "text"}),
            (4, 7, ("y",), {"b": 2, "description": "more"}),
        ],
        id="crlf",
    ),
    pytest.param("/// a\rint x;\r", [(1, 2, ("x",), {"description": "a"})], id="lone-cr"),
    pytest.param(
        "\ufeff/// a\nint x;\n", [(1, 2, ("x",), {"description": "a"})], id="byte-order-mark"
    ),
    pytest.param(
        "/// Trace ünïcödé 😀 текст\nconst volatile int 計數 = 0;\n",
        [(1, 2, ("計數",), {"description": "Trace ünïcödé 😀 текст"})],
        id="unicode",
    ),
    pytest.param(
        "/* a\n   long\n   comment */\n/// doc\nint x;\n",
        [(4, 5, ("x",), {"description": "doc"})],
        id="line-numbers-after-block-comment",
    ),
]


@pytest.mark.parametrize(("source", "expected"), LEXING_CASES)
def test_lexing(
    source: str, expected: list[tuple[int, int, tuple[str, ...], dict[str, Any]]]
) -> None:
    assert summary(source) == expected


def test_javadoc_lines_keep_their_line_numbers() -> None:
    (doc,) = extract_doc_comments("\n/**\n * @a 1\n *\n * @b x\n */\nint v;\n")
    assert doc.lines == ((2, ""), (3, " @a 1"), (4, ""), (5, " @b x"), (6, " "))
    assert doc.keys_lines == {"a": 3, "b": 5}
    assert doc.warnings == (W(5, "'@b' value is not JSON, kept as a string: x"),)


# ---------------------------------------------------------------------------
# @cmdarg checks

CMDARG_ERRORS = [
    pytest.param(
        [("pid", 3, ["p"])],
        'f.bpf.c:3: @cmdarg of \'pid\' must be a JSON object like {"short": "p", "long": "pid"}',
        id="not-an-object",
    ),
    pytest.param(
        [("pid", 3, "p")],
        'f.bpf.c:3: @cmdarg of \'pid\' must be a JSON object like {"short": "p", "long": "pid"}',
        id="a-string",
    ),
    pytest.param(
        [("pid", 4, {"short": "pp"})],
        "f.bpf.c:4: @cmdarg short option of 'pid' must be one letter or digit, got \"pp\"",
        id="short-two-letters",
    ),
    pytest.param(
        [("pid", 4, {"short": ""})],
        "f.bpf.c:4: @cmdarg short option of 'pid' must be one letter or digit, got \"\"",
        id="short-empty",
    ),
    pytest.param(
        [("pid", 4, {"short": 1})],
        "f.bpf.c:4: @cmdarg short option of 'pid' must be one letter or digit, got 1",
        id="short-number",
    ),
    pytest.param(
        [("pid", 4, {"short": "-"})],
        "f.bpf.c:4: @cmdarg short option of 'pid' must be one letter or digit, got \"-\"",
        id="short-punctuation",
    ),
    pytest.param(
        [("pid", 4, {"short": "é"})],
        "f.bpf.c:4: @cmdarg short option of 'pid' must be one letter or digit, got \"é\"",
        id="short-not-ascii",
    ),
    pytest.param(
        [("pid", 4, {"short": None})],
        "f.bpf.c:4: @cmdarg short option of 'pid' must be one letter or digit, got null",
        id="short-null",
    ),
    pytest.param(
        [("pid", 5, {"long": "-pid"})],
        "f.bpf.c:5: @cmdarg long option of 'pid' must be letters, digits, '-' or '_', got \"-pid\"",
        id="long-leading-dash",
    ),
    pytest.param(
        [("pid", 5, {"long": "target pid"})],
        "f.bpf.c:5: @cmdarg long option of 'pid' must be letters, digits, '-' or '_', "
        'got "target pid"',
        id="long-with-space",
    ),
    pytest.param(
        [("pid", 5, {"long": ""})],
        "f.bpf.c:5: @cmdarg long option of 'pid' must be letters, digits, '-' or '_', got \"\"",
        id="long-empty",
    ),
    pytest.param(
        [("pid", 5, {"long": ["pid"]})],
        "f.bpf.c:5: @cmdarg long option of 'pid' must be letters, digits, '-' or '_', "
        'got ["pid"]',
        id="long-not-string",
    ),
    pytest.param(
        [("host", 6, {"short": "h"})],
        "f.bpf.c:6: option -h of 'host' is reserved for --help",
        id="short-h-reserved",
    ),
    pytest.param(
        [("x", 6, {"long": "help"})],
        "f.bpf.c:6: option --help of 'x' is reserved for --help",
        id="long-help-reserved",
    ),
    pytest.param(
        [("help", 6, {})],
        "f.bpf.c:6: option --help of 'help' is reserved for --help",
        id="variable-named-help",
    ),
    pytest.param(
        [("pid", 3, {"short": "p"}), ("ppid", 9, {"short": "p"})],
        "f.bpf.c:9: option -p of 'ppid' clashes with 'pid' at line 3; "
        'give one of them another "short"',
        id="short-clash",
    ),
    pytest.param(
        [("a", 3, {"long": "pid"}), ("b", 9, {"long": "pid"})],
        "f.bpf.c:9: option --pid of 'b' clashes with 'a' at line 3; "
        'give one of them another "long"',
        id="long-clash",
    ),
    pytest.param(
        [("pid", 3, {}), ("target", 9, {"long": "pid"})],
        "f.bpf.c:9: option --pid of 'target' clashes with 'pid' at line 3; "
        'give one of them another "long"',
        id="long-clash-with-variable-name",
    ),
]


@pytest.mark.parametrize(("entries", "message"), CMDARG_ERRORS)
def test_cmdarg_errors(entries: list[tuple[str, int, object]], message: str) -> None:
    with pytest.raises(AnnotationError) as caught:
        validate_cmdargs(entries, "f.bpf.c")
    assert str(caught.value) == message
    assert "\n" not in str(caught.value)


def test_cmdargs_that_are_fine() -> None:
    validate_cmdargs(
        [
            ("target_pid", 3, {"default": 0, "short": "p", "long": "pid", "help": "pid"}),
            ("other", 5, {"short": "P", "long": "other-name_2"}),
            ("min_duration_ns", 7, MappingProxyType({"short": "9"})),
            ("pid_filter", 9, {}),
            ("targ_pid", 11, {"long": "targ"}),
            ("targ", 13, {"long": "targ2"}),
        ],
        "f.bpf.c",
    )
    validate_cmdargs([], "f.bpf.c")


# ---------------------------------------------------------------------------
# Robustness and speed

SAMPLE = """\
// SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "bootstrap.h"

#define MAX_ENTRIES 10240
#define TASK_COMM_LEN 16

/// @description Only trace this pid
/// @cmdarg {"default": 0, "short": "p", "long": "pid"}
const volatile pid_t targ_pid = 0;

/**
 * Minimal duration, in nanoseconds.
 * @cmdarg {"short": "d"}
 */
const volatile unsigned long long min_duration_ns = 0;

struct {
\t__uint(type, BPF_MAP_TYPE_HASH);
\t__uint(max_entries, 8192);
\t__type(key, pid_t);
\t__type(value, u64);
} exec_start SEC(".maps");

/// @sample {"interval": 1000, "type": "log2_hist"}
struct {
\t__uint(type, BPF_MAP_TYPE_RINGBUF);
\t__uint(max_entries, 256 * 1024);
} rb SEC(".maps");

static __always_inline int trace(u32 pid, const char *s)
{
\t/* "not a string" { */
\tchar comm[TASK_COMM_LEN] = "{";
\tif (pid == '}')
\t\treturn 0;
\tbpf_printk("%s // not a comment", s);
\treturn 0;
}

/// @tchook {"ifindex": 1, "attach_point": "BPF_TC_INGRESS"}
SEC("tp/sched/sched_process_exec")
int handle_exec(struct trace_event_raw_sched_process_exec *ctx)
{
\tstruct task_struct *task;
\tunsigned fname_off;
\tstruct event *e;
\tpid_t pid;
\tu64 ts;

\tpid = bpf_get_current_pid_tgid() >> 32;
\tts = bpf_ktime_get_ns();
\tbpf_map_update_elem(&exec_start, &pid, &ts, BPF_ANY);
#if 0
\t{ {
#endif
\te = bpf_ringbuf_reserve(&rb, sizeof(*e), 0);
\tif (!e)
\t\treturn 0;
\tfname_off = ctx->__data_loc_filename & 0xFFFF;
\tbpf_ringbuf_submit(e, 0);
\treturn 0;
}

/// kprobe
SEC("kprobe/do_unlinkat")
int BPF_KPROBE(do_unlinkat, int dfd, struct filename *name)
{
\treturn trace(dfd, "x");
}

/// @brief demo
/// @version 0.1
char LICENSE[] SEC("license") = "Dual BSD/GPL";
"""

SAMPLE_EXPECTED = [
    (11, 13, ("targ_pid",)),
    (15, 19, ("min_duration_ns",)),
    (28, 29, ("rb",)),
    (44, 45, ("handle_exec",)),
    (68, 69, ("do_unlinkat",)),
    (75, 77, ("LICENSE",)),
]


def test_sample_source() -> None:
    docs = extract_doc_comments(SAMPLE)
    assert [(doc.line, doc.decl_line, doc.candidates) for doc in docs] == SAMPLE_EXPECTED
    assert all(doc.warnings == () for doc in docs)


def check_invariants(source: str) -> None:
    docs = extract_doc_comments(source)
    lines = source.replace("\r\n", "\n").replace("\r", "\n").count("\n") + 1
    previous = 0
    for doc in docs:
        assert doc.line >= previous  # source order
        assert doc.line <= doc.decl_line <= lines
        assert all(isinstance(name, str) and name for name in doc.candidates)
        previous = doc.line


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=2000))
def test_any_text_never_raises(source: str) -> None:
    check_invariants(source)


C_ALPHABET = st.sampled_from(
    list("/*\"'\\\n\r\t #{}()[];=,<!@abcXY_01")
    + ["///", "/**", "*/", "#if 0\n", "#else\n", "#endif\n"]
)


@settings(max_examples=400, deadline=None)
@given(st.lists(C_ALPHABET, max_size=600).map("".join))
def test_c_shaped_text_never_raises(source: str) -> None:
    check_invariants(source)


SNIPPETS = [
    "/// ", "/** ", " */", "//", "/*", "\n", "\\\n", "\r\n", '"', "'", "{", "}", "(", ")",
    ";", "=", ",", "[", "]", "#if 0\n", "#ifdef X\n", "#else\n", "#elif 1\n", "#endif\n",
    "#define Y \\\n", "@cmdarg {", "@a [", "@", "SEC(", "BPF_KPROBE(", "struct {", "\ufeff",
    "\x00", "é", "😀",
]  # fmt: skip


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_sources_never_raise(data: st.DataObject) -> None:
    source = SAMPLE
    for _ in range(data.draw(st.integers(1, 8), label="edits")):
        at = data.draw(st.integers(0, len(source)), label="at")
        if data.draw(st.booleans(), label="delete"):
            length = data.draw(st.integers(1, 40), label="length")
            source = source[:at] + source[at + length :]
        else:
            source = (
                source[:at] + data.draw(st.sampled_from(SNIPPETS), label="snippet") + source[at:]
            )
    check_invariants(source)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.integers(1, 10**6), st.text(max_size=120)), max_size=20), st.booleans()
)
def test_any_comment_body_never_raises(lines: list[tuple[int, str]], doc_keys: bool) -> None:
    annotations, keys_lines, warnings = parse_comment_body(lines, doc_keys=doc_keys)
    assert set(keys_lines) == set(annotations)
    assert all(isinstance(warning, Diagnostic) for warning in warnings)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=4),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["pid", "help", "a", "b"]),
            st.integers(1, 99),
            st.dictionaries(st.sampled_from(["short", "long", "default"]), JSON_VALUES, max_size=3)
            | JSON_VALUES,
        ),
        max_size=5,
    )
)
def test_validate_cmdargs_only_raises_annotation_errors(
    entries: list[tuple[str, int, Any]],
) -> None:
    try:
        validate_cmdargs(entries, "f.bpf.c")
    except AnnotationError as error:
        assert str(error).startswith("f.bpf.c:")


def test_one_megabyte_source_under_a_second() -> None:
    source = SAMPLE * (1_000_000 // len(SAMPLE) + 1)
    assert len(source) >= 1_000_000
    extract_doc_comments(SAMPLE)  # warm caches (compiled regexes)
    started = time.perf_counter()
    docs = extract_doc_comments(source)
    elapsed = time.perf_counter() - started
    assert len(docs) == len(SAMPLE_EXPECTED) * source.count("// SPDX")
    assert elapsed < 1.0, f"1 MB took {elapsed:.2f} s"


QUARTER = 256 * 1024
PATHOLOGICAL = [
    pytest.param("(" * QUARTER, id="open-parens"),
    pytest.param("{" * QUARTER, id="open-braces"),
    pytest.param("}" * QUARTER, id="close-braces"),
    pytest.param('"' * QUARTER, id="quotes"),
    pytest.param("/*" * (QUARTER // 2), id="comment-openers"),
    pytest.param("/// x\n" + "a " * (QUARTER // 2), id="doc-then-no-semicolon"),
    pytest.param(
        "/// x\nint a\n" + "b\n#ifdef X\nc {\n#else\nd\n#endif\n" * (QUARTER // 32),
        id="conditionals-mid-declaration",
    ),
    pytest.param("/// @a {\n" * (QUARTER // 9) + "int x;", id="unclosed-json-run"),
    pytest.param("\n#" * (QUARTER // 2), id="hashes"),
    pytest.param("#if 0\n" * (QUARTER // 6), id="nested-if0"),
    pytest.param("\\\n" * (QUARTER // 2), id="continuations"),
    pytest.param("#if " + "(" * QUARTER + "0" + ")" * QUARTER + "\n", id="parenthesised-if"),
    pytest.param("/** @x 1 */ int a;\n" * (QUARTER // 19), id="many-docs"),
    pytest.param("/// " + "[" * (QUARTER // 2) + "\nint a;", id="deep-brackets"),
    pytest.param("\r" * QUARTER, id="carriage-returns"),
]


@pytest.mark.parametrize("source", PATHOLOGICAL)
def test_pathological_input_is_linear(source: str) -> None:
    started = time.perf_counter()
    extract_doc_comments(source)
    elapsed = time.perf_counter() - started
    assert elapsed < 1.0, f"{len(source)} chars took {elapsed:.2f} s"
