// Package config reads, checks and interprets one dlock node's YAML configuration.
//
// The file format is the seed's config.yaml (sections id, network, parameters and storage, with the
// seed's key names), so existing seed files load unchanged, plus dlock's additions (network.advertise_address,
// storage.data_dir, the new parameters, the limits section and the optional observability section).
// docs/config.md is the key reference.
//
// A caller's duties, in order:
//
//  1. Obtain a Config: Load(path) for a file, Parse(data) for bytes, or Default() for a single
//     development node. Load and Parse start from Default(), so a key the file leaves out keeps its
//     default; an unknown key is an error, because a misspelt key silently falling back to its default
//     is how a cluster ends up with timings nobody chose.
//  2. If you built or changed a Config in Go, call Validate. Load and Parse already have. Validate reports
//     every problem at once, each as a *KeyError naming the YAML key, the value and the bound, and it
//     never fills in defaults: a Config that validates is exactly what runs.
//  3. Read the derived settings from the validated Config: Members for the cluster, RaftTiming for
//     hashicorp/raft, DataDir and LogStorePath for storage, SlogLevel and LogFile for logging. These
//     methods assume a valid Config; on an invalid one they return values but do not check them.
//
// A Config is a plain value: it is safe for concurrent reads, and nothing in this package mutates one
// after Parse returns it. Nothing here is reloadable at run time; a change takes a restart.
package config
