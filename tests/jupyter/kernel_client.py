#!/usr/bin/env python3
"""Drives the gonnsight kernel through Jupyter's own client (jupyter_client's KernelManager and
BlockingKernelClient), as a notebook front end would, and prints what each step got as JSON.

Run by tests/kernel_test.go (`go test ./tests -run Kernel`), which asserts on the JSON:
    /usr/bin/python3 tests/jupyter/kernel_client.py --kernel gonnsight [--cwd DIR]

Each step is {"name", "code", "status" (the execute_reply's), "stdout", "stderr", "displays"
(a list of mime bundles), "errors" (ename/evalue/traceback), "elapsed" (seconds)}; the
interrupt step adds "interrupted_after". The script itself fails (exit 2, JSON with "fatal")
only when the kernel cannot be driven at all.
"""
import argparse
import json
import os
import queue
import sys
import time
import traceback

from jupyter_client.manager import KernelManager

PROMPT = "The Eiffel Tower is in the city of"

DECLS = '''
import (
	"fmt"
	"os"

	"github.com/gonnsight/gonnsight/display"
	"github.com/gonnsight/gonnsight/edit"
	"github.com/gonnsight/gonnsight/nnsight"
)

var model = nnsight.LanguageModel("gonnsight/tiny-gpt2")
var prompt = "%s"
var queryWrapper = edit.New("transformer.h.1.attn", "query", "query_wrapper", edit.Identity())

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}
''' % PROMPT

# Steps run in order: (name, code). Special steps are handled in main().
SAVE = '''
%%
res, err := model.Trace(prompt, func(t *nnsight.Tracer) {
	t.Module("transformer.h.0.mlp").Output().Save("mlp0")
})
must(err)
data, shape, _ := res.Float32("mlp0")
fmt.Println("saved mlp0 shape:", shape, "values:", len(data), "max:", nnsight.MaxAbs(data))
'''

GRAPH = '''
%%
gr, err := model.Graph("transformer.h.0.mlp.c_proj")
must(err)
display.ShowGraph(gr)
'''

ATTENTION = '''
%%
res, err := model.Trace(prompt, func(t *nnsight.Tracer) {
	t.Module("transformer.h.0.attn.attn_weights").Output().Save("w")
})
must(err)
w, shape, _ := res.Float32("w")
fmt.Println("attention weights:", shape)
display.ShowAttention(w, shape[1], shape[2], res.Batch.Tokens[0])
'''

SLEEP = '''
import "time"

%%
fmt.Println("sleeping")
time.Sleep(60 * time.Second)
fmt.Println("woke up: the interrupt did not stop the cell")
'''

ALIVE = '''
%%
fmt.Println("alive after WHAT")
'''

PANIC = '''
%%
fmt.Println("about to panic")
panic("deliberate panic in a cell")
'''

LOAD_EDITS = '''
%%
must(model.LoadEdits(queryWrapper))
fmt.Println("loaded edits:", model.Edits())
'''

TRACE_EDIT = '''
%%
fmt.Println("edits in this cell:", model.Edits())
res, err := model.Trace(prompt, func(t *nnsight.Tracer) {
	t.Module("transformer.h.1.attn.query_wrapper").Output().Save("q")
})
must(err)
_, shape, _ := res.Float32("q")
fmt.Println("query_wrapper output shape:", shape)
'''

KEEP = '''
%%
res, err := model.Trace(prompt, nil)
must(err)
must(nnsight.Keep("logits_before", res.Logits()))
a, shape, _ := res.Float32("logits")
fmt.Printf("kept logits %v max %.6f\\n", shape, nnsight.MaxAbs(a))
fmt.Println("session dir:", nnsight.SessionDir())
'''

KEPT = '''
%%
t, err := nnsight.Kept("logits_before")
must(err)
a, shape, err := nnsight.Float32(t)
must(err)
fmt.Printf("kept logits %v max %.6f\\n", shape, nnsight.MaxAbs(a))
fmt.Println("session dir:", nnsight.SessionDir())
fmt.Println("kept names:", nnsight.KeptNames())
'''

# After a restart the kernel has forgotten every declaration. The identity edit loaded before the
# restart is data (its Spec in the session directory), so it applies again without being
# declared; declaring it again changes nothing.
REDECLARE_NO_EDIT = DECLS.replace(
    'var queryWrapper = edit.New("transformer.h.1.attn", "query", "query_wrapper", edit.Identity())\n', '')
REDECLARE_EDIT = '''
var queryWrapper = edit.New("transformer.h.1.attn", "query", "query_wrapper", edit.Identity())
'''

# An edit whose wrapper is Go code cannot be re-created from the session store: the next cell's
# trace is an error naming it until the cell loads it again.
CODE_EDIT = '''
import "github.com/gonnsight/gonnsight/ops"

var doubler = edit.New("transformer.h.0.mlp", "act", "doubler", nnsight.Fn1("double", func(x *ops.Node) *ops.Node { return ops.MulScalar(x, 2) }))
%%
must(model.LoadEdits(doubler))
fmt.Println("loaded edits:", model.Edits())
'''

CODE_EDIT_NEXT_CELL = '''
%%
_, err := model.Trace(prompt, nil)
fmt.Println("trace error:", err)
'''

CODE_EDIT_LOADED_AGAIN = '''
%%
must(model.LoadEdits(doubler))
_, err := model.Trace(prompt, nil)
must(err)
fmt.Println("edits after loading again:", model.Edits())
'''

TYPO = '''
%%
_, err := model.Trace(prompt, func(t *nnsight.Tracer) {
	t.Module("transformer.h.0.mpl").Output().Save("x")
})
fmt.Println("trace error:", err)
'''


class Driver:
    def __init__(self, km, kc, timeout):
        self.km, self.kc, self.timeout = km, kc, timeout
        self.steps = []

    def drain_iopub(self):
        while True:
            try:
                self.kc.get_iopub_msg(timeout=0.2)
            except queue.Empty:
                return

    def run(self, name, code, interrupt_on=None, interrupt_after=0.0):
        """Executes code; when interrupt_on is set, interrupts the kernel once that text has been
        printed (and interrupt_after seconds have passed)."""
        code = code.strip("\n") + "\n"
        step = {"name": name, "code": code, "status": None, "stdout": "", "stderr": "",
                "displays": [], "errors": []}
        start = time.time()
        msg_id = self.kc.execute(code)
        deadline = start + self.timeout
        idle = False
        seen_at = None
        interrupted = False
        while not idle:
            if time.time() > deadline:
                step["status"] = "client timeout"
                break
            if interrupt_on and not interrupted and seen_at is not None and time.time() - seen_at >= interrupt_after:
                self.km.interrupt_kernel()
                interrupted = True
                step["interrupted_after"] = time.time() - start
            try:
                msg = self.kc.get_iopub_msg(timeout=0.2)
            except queue.Empty:
                continue
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            t, c = msg["msg_type"], msg["content"]
            if t == "status" and c.get("execution_state") == "idle":
                idle = True
            elif t == "stream":
                step[c["name"] if c["name"] in ("stdout", "stderr") else "stdout"] += c["text"]
                if interrupt_on and seen_at is None and interrupt_on in step["stdout"]:
                    seen_at = time.time()
            elif t in ("display_data", "execute_result", "update_display_data"):
                step["displays"].append({"msg_type": t, "data": c.get("data", {}), "metadata": c.get("metadata", {})})
            elif t == "error":
                step["errors"].append({"ename": c.get("ename"), "evalue": c.get("evalue"),
                                       "traceback": c.get("traceback", [])})
        if step["status"] is None:
            while True:
                remaining = deadline - time.time()
                try:
                    reply = self.kc.get_shell_msg(timeout=max(remaining, 1))
                except queue.Empty:
                    step["status"] = "no reply"
                    break
                if reply.get("parent_header", {}).get("msg_id") == msg_id:
                    step["status"] = reply["content"].get("status")
                    if reply["content"].get("ename"):
                        step["reply_error"] = {"ename": reply["content"].get("ename"),
                                               "evalue": reply["content"].get("evalue")}
                    break
        step["elapsed"] = time.time() - start
        self.steps.append(step)
        return step


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kernel", default="gonnsight")
    ap.add_argument("--cwd", default=os.getcwd())
    ap.add_argument("--timeout", type=float, default=300, help="per-cell limit in seconds")
    args = ap.parse_args()

    result = {"kernel": args.kernel, "steps": [], "events": []}
    km = KernelManager(kernel_name=args.kernel)
    kc = None
    try:
        km.start_kernel(cwd=args.cwd)
        result["connection_file"] = km.connection_file
        kc = km.client()
        kc.start_channels()
        kc.wait_for_ready(timeout=180)
        d = Driver(km, kc, args.timeout)
        result["steps"] = d.steps

        d.run("declare", DECLS)
        d.run("save", SAVE)
        d.run("graph", GRAPH)
        d.run("attention", ATTENTION)
        # (d) A long cell, interrupted through the kernelspec's interrupt mode, then the next cell.
        d.run("sleep", SLEEP, interrupt_on="sleeping", interrupt_after=1.0)
        result["events"].append({"after": "sleep", "alive": km.is_alive()})
        d.run("after_interrupt", ALIVE.replace("WHAT", "interrupt"))
        # (e) A cell that panics, then the next cell.
        d.run("panic", PANIC)
        result["events"].append({"after": "panic", "alive": km.is_alive()})
        d.run("after_panic", ALIVE.replace("WHAT", "panic"))
        # (f) Cross-cell state: edits and kept values.
        d.run("load_edits", LOAD_EDITS)
        d.run("trace_edit", TRACE_EDIT)
        d.run("keep", KEEP)
        d.run("kept", KEPT)
        # (g) A typo'd module path.
        d.run("typo", TYPO)
        d.run("after_typo", ALIVE.replace("WHAT", "typo"))

        # Restart with the same connection file: the session directory is kept.
        t0 = time.time()
        km.restart_kernel(now=False)
        kc.wait_for_ready(timeout=180)
        d.drain_iopub()
        result["events"].append({"after": "restart", "alive": km.is_alive(),
                                 "connection_file": km.connection_file, "seconds": time.time() - t0})
        d.run("redeclare_after_restart", REDECLARE_NO_EDIT)
        d.run("kept_after_restart", KEPT)
        d.run("edit_undeclared_after_restart", TRACE_EDIT)
        d.run("redeclare_edit_after_restart", REDECLARE_EDIT)
        d.run("trace_edit_after_restart", TRACE_EDIT)
        d.run("code_edit", CODE_EDIT)
        d.run("code_edit_next_cell", CODE_EDIT_NEXT_CELL)
        d.run("code_edit_loaded_again", CODE_EDIT_LOADED_AGAIN)
    except Exception:
        result["fatal"] = traceback.format_exc()
    finally:
        if kc is not None:
            try:
                kc.stop_channels()
            except Exception:
                pass
        try:
            km.shutdown_kernel(now=False)
        except Exception:
            result.setdefault("shutdown_error", traceback.format_exc())
    # The session directory goes with the final shutdown (once the connection file is deleted).
    session = None
    for st in result["steps"]:
        for line in st["stdout"].splitlines():
            if line.startswith("session dir: "):
                session = line[len("session dir: "):].strip()
    if session:
        result["session_dir"] = session
        deadline = time.time() + 15
        while os.path.exists(session) and time.time() < deadline:
            time.sleep(0.2)
        result["session_dir_removed"] = not os.path.exists(session)
    json.dump(result, sys.stdout, indent=1)
    sys.stdout.write("\n")
    return 2 if "fatal" in result else 0


if __name__ == "__main__":
    sys.exit(main())
