package config

import (
	"strings"

	"github.com/mongorelay/mongorelay/tasks/connector"
)

// Problem and ValidationError are the seam's: every kind reports a bad config the same way.
type (
	Problem         = connector.Problem
	ValidationError = connector.ValidationError
)

// renamedKey maps keys of Debezium 1.x, which translate leaves to the user,
// to ours, for keys whose spelling edit distance cannot guess.
func renamedKey(name string) string {
	switch strings.ToLower(name) {
	case "database.whitelist":
		return "database.include.list"
	case "database.blacklist":
		return "database.exclude.list"
	case "collection.whitelist":
		return "collection.include.list"
	case "collection.blacklist":
		return "collection.exclude.list"
	case "mongodb.hosts":
		return "mongodb.connection.string"
	case "mongodb.name":
		return "topic.prefix"
	}
	return ""
}

// suggestKey proposes the key an unknown key was probably meant to be.
func suggestKey(name string) string {
	if to := renamedKey(name); to != "" {
		return to
	}
	// A foreign key misspelt is closer to its own name than to ours.
	names := translatedKeys()
	for _, k := range Keys() {
		names = append(names, k.Name)
		// A known key's last words given alone, e.g. "prefix".
		if strings.HasSuffix(k.Name, "."+strings.ToLower(name)) {
			return k.Name
		}
	}
	return connector.Suggest(name, names)
}
