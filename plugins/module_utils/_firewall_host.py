# -*- coding: utf-8 -*-
# Copyright (c) 2026 cloudcore.ha contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The node side of the firewall modules (vrrp_firewall, balancer_firewall): which firewalls are
active, and running the plans of _firewall.py (and the balancer's guard, _firewall_guard.py) against
them.

Host wraps the module object (an AnsibleModule, or a stand-in in the unit tests): its commands, its
check mode and its failure. Every handler reads the firewall's state, plans, and changes something
only outside check mode; each returns (plan, changed), changed meaning "would change" in check mode.
No Ansible imports: the module object is all this needs.
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any, Dict, List, Mapping, Optional, Tuple

from ansible_collections.cloudcore.ha.plugins.module_utils._firewall import (
    BalancerTraffic,
    FirewallError,
    Traffic,
    active_backends,
    firewalld_zone,
    nft_dropin_text,
    plan_firewalld,
    plan_nftables,
    plan_ufw,
)
from ansible_collections.cloudcore.ha.plugins.module_utils._firewall_guard import (
    GUARD_SPEC,
    GuardPlan,
    guard_dropin_text,
    guard_unit_text,
    plan_guard,
    removal_script,
)

SBIN = ["/usr/sbin", "/sbin", "/usr/local/sbin"]
VRRP_DROPIN = "/etc/systemd/system/nftables.service.d/cloudcore-ha.conf"


def _text(data: Any) -> str:
    return data.decode("utf-8", "surrogateescape") if isinstance(data, bytes) else str(data)


class Host(object):
    """The commands and files of one node, failing the module with the command's own words."""

    def __init__(self, module: Any, name: str = "vrrp_firewall"):
        self.module = module
        self.name = name  # the module's name, which leads its messages

    @property
    def check_mode(self) -> bool:
        return bool(self.module.check_mode)

    def fail(self, msg: str, **kwargs: Any) -> None:
        self.module.fail_json(msg=msg, **kwargs)

    def binary(self, name: str) -> Optional[str]:
        return self.module.get_bin_path(name, required=False, opt_dirs=SBIN)

    def run(self, argv: List[str], data: Optional[str] = None, must_succeed: bool = True) -> Tuple[int, str]:
        rc, out, err = self.module.run_command(argv, data=data, check_rc=False, binary_data=data is not None)
        if must_succeed and rc != 0:
            self.fail("%s failed (exit %d): %s" % (" ".join(argv), rc, (err or out).strip()), rc=rc, stdout=out,
                      stderr=err)
        return rc, out

    def output(self, argv: List[str]) -> str:
        """Output of a probe; empty when the tool is missing or says no."""
        binary = self.binary(argv[0])
        if binary is None:
            return ""
        return self.run([binary] + argv[1:], must_succeed=False)[1]

    def read(self, path: str) -> Optional[str]:
        try:
            with open(path, "rb") as handle:
                return _text(handle.read())
        except FileNotFoundError:
            return None

    def write(self, path: str, text: str) -> bool:
        """Atomically write text (0644, root) when it differs; empty text removes the file."""
        before = self.read(path)
        wanted = text or None
        if before == wanted:
            return False
        if self.check_mode:
            return True
        if wanted is None:
            os.unlink(path)
            return True
        directory = os.path.dirname(path)
        if not os.path.isdir(directory):
            os.makedirs(directory, 0o755)
        fd, tmp = tempfile.mkstemp(prefix=".cloudcore-ha.", dir=directory)
        with os.fdopen(fd, "wb") as handle:
            handle.write(text.encode("utf-8"))
        os.chmod(tmp, 0o644)
        self.module.atomic_move(tmp, path, unsafe_writes=False)
        return True

    def nft_ruleset(self, nft: str, hint: str) -> Mapping[str, Any]:
        """`nft -j list ruleset`, parsed; fails with the hint when nft prints no JSON."""
        listing = self.run([nft, "-j", "list", "ruleset"])[1]
        try:
            return json.loads(listing or "{}")
        except ValueError:
            self.fail("%s: %s -j list ruleset did not print JSON (nft older than 0.9?); %s" % (self.name, nft, hint),
                      stdout=listing[:2000])
            raise  # fail() does not return


def detect(host: Host) -> List[str]:
    return active_backends(
        firewalld_state=host.output(["firewall-cmd", "--state"]),
        ufw_status=host.output(["ufw", "status"]),
        nftables_state=host.output(["systemctl", "is-active", "nftables"]))


def handle_nftables(host: Host, traffic: Traffic, present: bool, dropin_path: str = VRRP_DROPIN):
    nft = host.binary("nft")
    ruleset = host.nft_ruleset(nft, "set firewall=none and %s" % traffic.yourself)  # type: ignore[arg-type]
    plan = plan_nftables(ruleset, traffic, present, dropin_name=os.path.basename(dropin_path))
    if plan.changed and not host.check_mode:
        host.run([nft, "-f", "-"], data=plan.script())  # type: ignore[list-item]
    return plan, plan.changed


def handle_nftables_files(host: Host, traffic: Traffic, present: bool, plans: Mapping[str, Any],
                          params: Mapping[str, Any]) -> bool:
    """The rules file and the drop-in: kept while nftables rules are wanted, removed otherwise."""
    plan = plans.get("nftables")
    rules_text = plan.persistent_text() if plan is not None and present else ""
    nft = host.binary("nft") or "/usr/sbin/nft"
    dropin_text = nft_dropin_text(nft, params["nft_rules_path"], traffic.dropin) if rules_text else ""
    changed = host.write(params["nft_rules_path"], rules_text)
    dropin_changed = host.write(params["nft_dropin_path"], dropin_text)
    if dropin_changed and not host.check_mode:
        host.run([host.binary("systemctl") or "systemctl", "daemon-reload"])
    return changed or dropin_changed


def handle_ufw(host: Host, traffic: Traffic, present: bool):
    ufw = host.binary("ufw")
    plan = plan_ufw(host.run([ufw, "show", "added"])[1], traffic, present)  # type: ignore[list-item]
    if plan.changed and not host.check_mode:
        for argv in plan.commands():
            host.run([ufw] + argv[1:])  # type: ignore[list-item]
    return plan, plan.changed


def handle_firewalld(host: Host, traffic: Traffic, present: bool):
    cmd = host.binary("firewall-cmd")
    rc, out = host.run([cmd, "--get-zone-of-interface=%s" % traffic.interface], must_succeed=False)  # type: ignore[list-item]
    zone = firewalld_zone((rc, out), host.run([cmd, "--get-default-zone"])[1])  # type: ignore[list-item]
    permanent = host.run([cmd, "--permanent", "--zone=%s" % zone, "--list-rich-rules"])[1]  # type: ignore[list-item]
    runtime = host.run([cmd, "--zone=%s" % zone, "--list-rich-rules"])[1]  # type: ignore[list-item]
    plan = plan_firewalld(zone, permanent, runtime, traffic, present)
    if plan.changed and not host.check_mode:
        for argv in plan.commands():
            host.run([cmd] + argv[1:])  # type: ignore[list-item]
    return plan, plan.changed


def handle_backends(host: Host, handled: List[str], traffic: Traffic, present: bool, params: Mapping[str, Any]):
    """Each handled firewall in turn, then the nftables files: (plans by firewall, changed)."""
    plans, changed = {}, False  # type: Dict[str, Any], bool
    for name in handled:
        try:
            if name == "nftables":
                plans[name], backend_changed = handle_nftables(host, traffic, present, params["nft_dropin_path"])
            elif name == "ufw":
                plans[name], backend_changed = handle_ufw(host, traffic, present)
            else:
                plans[name], backend_changed = handle_firewalld(host, traffic, present)
        except FirewallError as error:
            host.fail("%s (%s): %s" % (host.name, name, error), changed=changed)
        changed = changed or backend_changed
    changed = handle_nftables_files(host, traffic, present, plans, params) or changed
    return plans, changed


def rules_diff(plans: Mapping[str, Any], header: str) -> Dict[str, str]:
    """The diff of the rules per firewall, before and after."""
    return dict(before_header=header, after_header=header,
                before="".join("%s: %s\n" % (name, line) for name, plan in plans.items() for line in plan.before()),
                after="".join("%s: %s\n" % (name, line) for name, plan in plans.items() for line in plan.after()))


NO_RULESET = {"nftables": []}  # type: Dict[str, Any]
NFT_MISSING = ("nft is not installed: install the nftables package (the balancer role installs it with haproxy);"
               " the guard that closes CloudCore's internal ports to all but the CloudCore nodes is an nft table")


def _systemctl(host: Host) -> str:
    systemctl = host.binary("systemctl")
    if systemctl is None:
        host.fail("%s: systemctl is not installed: the guard is kept across boots by a systemd unit" % host.name)
    return systemctl  # type: ignore[return-value]


def _unit_state(host: Host, systemctl: str, unit: str) -> Tuple[bool, bool]:
    """(enabled, active) of a unit; a unit that does not exist is neither."""
    enabled = host.run([systemctl, "is-enabled", unit], must_succeed=False)[1].strip() == "enabled"
    active = host.run([systemctl, "is-active", unit], must_succeed=False)[1].strip() == "active"
    return enabled, active


def handle_guard(host: Host, traffic: BalancerTraffic, present: bool,
                 params: Mapping[str, Any]) -> Tuple[Optional[GuardPlan], bool]:
    """The guard table, its file, its unit (enabled and started) and nftables.service's drop-in; absent,
    all of them removed. Present without nft fails before anything changes (in check mode it warns and
    reports what a run would add, as the role's install step would have installed nft)."""
    nft = host.binary("nft")
    if nft is None and present and not host.check_mode:
        host.fail("%s: %s" % (host.name, NFT_MISSING))
    systemctl = _systemctl(host)
    unit = os.path.basename(params["guard_unit_path"])
    enabled, active = _unit_state(host, systemctl, unit)
    plan = None  # type: Optional[GuardPlan]
    if nft is not None:
        plan = plan_guard(host.nft_ruleset(nft, "the guard needs nft 0.9 or later"), traffic, present)
    elif present:
        # check mode on a node where the role's install step has not run for real: what a run would add
        host.module.warn("%s: %s; a real run fails until it is installed" % (host.name, NFT_MISSING))
        plan = plan_guard(NO_RULESET, traffic, present)
    changed = bool(plan is not None and plan.changed)
    check = host.check_mode
    nft_path = nft or "/usr/sbin/nft"
    if present:
        if changed and not check:
            host.run([nft, "-f", "-"], data=plan.script())  # type: ignore[list-item,union-attr]
        changed = host.write(params["guard_path"], plan.file_text(traffic)) or changed  # type: ignore[union-attr]
        unit_changed = host.write(params["guard_unit_path"], guard_unit_text(nft_path, params["guard_path"]))
        dropin_changed = host.write(params["guard_dropin_path"], guard_dropin_text(nft_path, params["guard_path"]))
        if (unit_changed or dropin_changed) and not check:
            host.run([systemctl, "daemon-reload"])
        for needed, verb in ((not enabled, "enable"), (not active, "start")):
            if needed and not check:
                host.run([systemctl, verb, unit])
        return plan, changed or unit_changed or dropin_changed or not enabled or not active
    # absent: the unit first (its ExecStop deletes the table, and disable needs the unit file)
    for needed, verb in ((active, "stop"), (enabled, "disable")):
        if needed and not check:
            host.run([systemctl, verb, unit])
    if changed and not check:
        host.run([nft, "-f", "-"], data=removal_script())  # type: ignore[list-item]
    files = [host.write(params[name], "") for name in ("guard_path", "guard_unit_path", "guard_dropin_path")]
    if (files[1] or files[2]) and not check:
        host.run([systemctl, "daemon-reload"])
    return plan, changed or any(files) or enabled or active


def guard_result(plan: Optional[GuardPlan], params: Mapping[str, Any]) -> Dict[str, Any]:
    return {"table": GUARD_SPEC, "rules": plan.after() if plan is not None else [],
            "unit": os.path.basename(params["guard_unit_path"]), "file": params["guard_path"]}
