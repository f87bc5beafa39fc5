//! cgroupfs access (v1 and v2): owned by the cgroup work.
