# Copyright (c) 2026 cloudcore.ha contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A node's firewalls, as the firewall modules see them through run_command: nft (the JSON listing and
the scripts the modules feed it), ufw, firewall-cmd and systemctl.

It answers in the shapes the real tools print (nft 1.0.6, ufw 0.36.2, firewalld 1.3.3, Debian 12) and
applies what the modules run, so that a second run sees the first run's result. It understands the nft
statements the modules write and fails the test on anything else.
"""

from __future__ import annotations

import json
import re
import shlex

_INSERT = re.compile(r'^insert rule (\w+) (\w+) (\w+) (.*) comment "([^"]*)"$')
_DELETE_RULE = re.compile(r"^delete rule (\w+) (\w+) (\w+) handle (\d+)$")
_TABLE_EMPTY = re.compile(r"^table (\w+) (\w+) \{\}$")
_DELETE_TABLE = re.compile(r"^delete table (\w+) (\w+)$")
_TABLE_OPEN = re.compile(r"^table (\w+) (\w+) \{$")
_CHAIN_OPEN = re.compile(r"^chain (\w+) \{$")
_CHAIN_HEAD = re.compile(r"^type (\w+) hook (\w+) priority (-?\d+); policy (\w+);$")
_RULE = re.compile(r'^(.*) comment "([^"]*)"$')


class FirewallNode(object):
    def __init__(self, nftables=True, ufw=False, firewalld=False, nft_installed=True, zone="public"):
        self.installed = {"nft": nft_installed, "systemctl": True, "ufw": ufw, "firewall-cmd": firewalld}
        self.units = {"nftables.service": {"active": nftables, "enabled": nftables}}
        self.ufw_active = ufw
        self.ufw_added = ["allow 22/tcp"]
        self.firewalld_running = firewalld
        self.zone = zone
        self.rich = {"permanent": [], "runtime": []}
        self.tables = [("inet", "filter")]
        self.chains = [{"family": "inet", "table": "filter", "name": "input", "handle": 1, "type": "filter",
                        "hook": "input", "prio": 0, "policy": "drop"}]
        self.rules = [{"family": "inet", "table": "filter", "chain": "input", "handle": 2,
                       "expr": [{"accept": None}]}]  # the operator's own rule, without a comment
        self.next_handle = 10
        self.calls = []
        self.scripts = []
        self.daemon_reloads = 0

    # -- the module's side -------------------------------------------------------------------
    def bin_path(self, name, required=False, opt_dirs=None):
        return ("/usr/sbin/%s" % name) if self.installed.get(name) else None

    def run_command(self, argv, data=None, check_rc=False, binary_data=False, **kwargs):
        self.calls.append(list(argv))
        tool = argv[0].rsplit("/", 1)[-1]
        return getattr(self, "_" + tool.replace("-", "_"))(argv[1:], data)

    def mutating_calls(self):
        reads = (["-j", "list", "ruleset"], ["status"], ["show", "added"], ["--state"], ["--get-default-zone"])
        out = []
        for argv in self.calls:
            args = argv[1:]
            if args in [list(r) for r in reads] or args[:1] in (["is-active"], ["is-enabled"]):
                continue
            if any(a.startswith("--get-zone-of-interface") or a == "--list-rich-rules" for a in args):
                continue
            out.append(argv)
        return out

    # -- systemctl ---------------------------------------------------------------------------
    def _systemctl(self, args, data):
        verb = args[0]
        if verb == "daemon-reload":
            self.daemon_reloads += 1
            return 0, "", ""
        unit = self.units.setdefault(_unit(args[-1]), {"active": False, "enabled": False})
        if verb == "is-active":
            return (0, "active\n", "") if unit["active"] else (3, "inactive\n", "")
        if verb == "is-enabled":
            return (0, "enabled\n", "") if unit["enabled"] else (1, "disabled\n", "")
        if verb == "enable":
            unit["enabled"] = True
        elif verb == "disable":
            unit["enabled"] = False
        elif verb == "start":
            unit["active"] = True
        elif verb == "stop":
            unit["active"] = False
        else:
            raise AssertionError("systemctl %s" % args)
        return 0, "", ""

    # -- nft ---------------------------------------------------------------------------------
    def _nft(self, args, data):
        if args == ["-j", "list", "ruleset"]:
            items = [{"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}}]
            items += [{"table": {"family": f, "name": t, "handle": 1}} for f, t in self.tables]
            items += [{"chain": dict(c)} for c in self.chains]
            items += [{"rule": dict(r)} for r in self.rules]
            return 0, json.dumps({"nftables": items}), ""
        if args == ["-f", "-"]:
            self.scripts.append(data)
            self._apply(data)
            return 0, "", ""
        raise AssertionError("nft %s" % args)

    def _handle(self):
        self.next_handle += 1
        return self.next_handle

    def _apply(self, script):
        table = chain = None
        for raw in script.splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if chain is not None:
                head = _CHAIN_HEAD.match(line)
                rule = _RULE.match(line)
                if line == "}":
                    chain = None
                elif head:
                    chain.update(type=head.group(1), hook=head.group(2), prio=int(head.group(3)), policy=head.group(4))
                elif rule:
                    self.rules.append({"family": table[0], "table": table[1], "chain": chain["name"],
                                       "handle": self._handle(), "comment": rule.group(2), "body": rule.group(1)})
                else:
                    raise AssertionError("nft: cannot read %r" % line)
                continue
            if table is not None:
                opened = _CHAIN_OPEN.match(line)
                if line == "}":
                    table = None
                elif opened:
                    chain = {"family": table[0], "table": table[1], "name": opened.group(1), "handle": self._handle()}
                    self.chains.append(chain)
                else:
                    raise AssertionError("nft: cannot read %r" % line)
                continue
            for pattern, action in ((_INSERT, self._insert), (_DELETE_RULE, self._delete_rule),
                                    (_TABLE_EMPTY, self._add_table), (_DELETE_TABLE, self._delete_table)):
                found = pattern.match(line)
                if found:
                    action(*found.groups())
                    break
            else:
                opened = _TABLE_OPEN.match(line)
                if not opened:
                    raise AssertionError("nft: cannot read %r" % line)
                table = (opened.group(1), opened.group(2))
                self._add_table(*table)

    def _insert(self, family, table, chain, body, comment):
        assert any((c["family"], c["table"], c["name"]) == (family, table, chain) for c in self.chains), chain
        self.rules.insert(0, {"family": family, "table": table, "chain": chain, "handle": self._handle(),
                              "comment": comment, "body": body})

    def _delete_rule(self, family, table, chain, handle):
        before = len(self.rules)
        self.rules = [r for r in self.rules if (r["family"], r["table"], r["chain"], r["handle"])
                      != (family, table, chain, int(handle))]
        assert len(self.rules) == before - 1, "no rule with handle %s" % handle

    def _add_table(self, family, table):
        if (family, table) not in self.tables:
            self.tables.append((family, table))

    def _delete_table(self, family, table):
        assert (family, table) in self.tables, "no table %s %s" % (family, table)
        self.tables.remove((family, table))
        self.chains = [c for c in self.chains if (c["family"], c["table"]) != (family, table)]
        self.rules = [r for r in self.rules if (r["family"], r["table"]) != (family, table)]

    def rules_in(self, family, table):
        return [r for r in self.rules if (r["family"], r["table"]) == (family, table)]

    # -- ufw ---------------------------------------------------------------------------------
    def _ufw(self, args, data):
        if args == ["status"]:
            return 0, "Status: active\n" if self.ufw_active else "Status: inactive\n", ""
        if args == ["show", "added"]:
            lines = ["Added user rules (see 'ufw status' for running firewall):"]
            lines += ["ufw " + rule for rule in self.ufw_added] or ["(None)"]
            return 0, "\n".join(lines) + "\n", ""
        delete = args[0] == "delete"
        words = args[1:] if delete else args
        rule = " ".join(words[:-1]) + " '%s'" % words[-1] if words[-2:-1] == ["comment"] else shlex.join(words)
        if delete:
            assert rule in self.ufw_added, rule
            self.ufw_added.remove(rule)
        elif rule not in self.ufw_added:
            self.ufw_added.append(rule)
        return 0, "Rule added\n", ""

    # -- firewall-cmd ------------------------------------------------------------------------
    def _firewall_cmd(self, args, data):
        if args == ["--state"]:
            return (0, "running\n", "") if self.firewalld_running else (252, "not running\n", "")
        if args[0].startswith("--get-zone-of-interface="):
            return 0, self.zone + "\n", ""
        if args == ["--get-default-zone"]:
            return 0, "public\n", ""
        kind = "permanent" if args[0] == "--permanent" else "runtime"
        args = args[1:] if kind == "permanent" else args
        assert args[0] == "--zone=%s" % self.zone, args
        if args[1] == "--list-rich-rules":
            return 0, "".join(rule + "\n" for rule in self.rich[kind]), ""
        verb, rule = args[1].split("=", 1)
        if verb == "--add-rich-rule":
            self.rich[kind].append(rule)
        else:
            self.rich[kind].remove(rule)
        return 0, "success\n", ""


def _unit(name):
    return name if "." in name else name + ".service"


def install(monkeypatch, node):
    """Route an AnsibleModule's commands and binaries to the node."""
    from ansible.module_utils import basic

    monkeypatch.setattr(basic.AnsibleModule, "run_command",
                        lambda self, argv, **kwargs: node.run_command(argv, **kwargs))
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path",
                        lambda self, name, required=False, opt_dirs=None: node.bin_path(name))
    return node
