// Package daemons knows the fleet's three daemons by name, for the config
// file: one file sets all of them, so each checks it against every
// daemon's flags.
package daemons

import (
	cacheapi "github.com/shardns/shardns/cacheapi/app"
	dnsd "github.com/shardns/shardns/dnsd/app"
	"github.com/shardns/shardns/internal/config"
	resolverd "github.com/shardns/shardns/resolverd/service"
)

// Schema is what the fleet's config file may set: the flags of dnsd,
// resolverd and cacheapi, in sections of those names.
func Schema() *config.Schema {
	return config.NewSchema(map[string]config.Daemon{
		"dnsd":      &dnsd.Config{},
		"resolverd": &resolverd.Config{},
		"cacheapi":  &cacheapi.Config{},
	})
}
