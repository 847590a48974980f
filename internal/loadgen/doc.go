// Package loadgen drives a lock service with the workloads of `dlock bench` and measures what a user
// of locks would notice: operations per second and latency per operation, with every error counted.
//
// The same workloads run against dlock (DlockSystem) and, from the separate bench module, against
// etcd's and ZooKeeper's lock recipes, so their numbers compare like for like:
//
//  1. Build a System, or use DlockSystem.
//  2. Fill a Config: workload, clients, duration or operation count, TTL, hold time, payload size.
//  3. Call Run; it returns a Result once the duration has passed or the operations are done, or an
//     error if ctx ends first.
//  4. Print the Result with WriteTable or encode it as JSON.
//
// Latencies are kept exactly (one duration per operation, merged and sorted at the end), so
// percentiles are exact. That costs about 40 bytes a cycle (its acquire, release and sum, and when
// each returned), so runs are capped at DurationMax and OpsMax.
package loadgen
