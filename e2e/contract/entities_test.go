//go:build e2e

package contract

// The shapes of Kafka Connect's REST entities (org.apache.kafka.connect.runtime.rest.entities)
// and of the error body its ConnectExceptionMapper writes, as the contract checks them.

// states are the states ConnectorStateInfo may show.
var states = oneOf{"UNASSIGNED", "RUNNING", "PAUSED", "STOPPED", "FAILED", "RESTARTING"}

// errorBody is ErrorMessage: {"error_code": code, "message": "..."}, the message holding each
// of parts.
func errorBody(code int, parts ...string) shape {
	return exact{"error_code": eq{code}, "message": all{str, contains(parts)}}
}

// serverInfo is ServerInfo, GET /.
var serverInfo = fields{"version": str, "commit": str, "kafka_cluster_id": str}

// health is KIP-1017's GET /health answer of a healthy worker.
var health = fields{"status": eq{"healthy"}, "message": str}

// connectorInfo is ConnectorInfo: its config holds its name, as Connect stores it.
func connectorInfo(name string, tasks shape) shape {
	return exact{"name": eq{name}, "config": all{mapOf{elem: str}, fields{"name": eq{name}}}, "tasks": tasks, "type": eq{"source"}}
}

// taskIDs is the tasks of a ConnectorInfo: ConnectorTaskId.
func taskIDs(name string) shape { return array(exact{"connector": eq{name}, "task": num}) }

// stateInfo is ConnectorStateInfo with the connector in state (any when "") and tasks.
func stateInfo(name, state string, tasks shape) shape {
	var cs shape = states
	if state != "" {
		cs = eq{state}
	}
	return fields{"name": eq{name}, "connector": fields{"state": cs, "worker_id": str}, "tasks": tasks, "type": eq{"source"}}
}

// taskState is ConnectorStateInfo.TaskState, every task in state (any when "").
func taskState(state string) shape {
	var s shape = states
	if state != "" {
		s = eq{state}
	}
	return fields{"id": num, "state": s, "worker_id": str}
}

// taskInfo is TaskInfo, an entry of GET /connectors/{name}/tasks.
func taskInfo(name string) shape {
	return exact{"id": exact{"connector": eq{name}, "task": num}, "config": mapOf{elem: str}}
}

// connectorOffsets is ConnectorOffsets: partitions and offsets are objects (an offset null
// only in a PATCH).
func connectorOffsets(min int) shape {
	return exact{"offsets": arrayOf{elem: exact{"partition": object, "offset": object}, min: min}}
}

// message is Message, the answer to an offsets change.
var message = exact{"message": str}

// pluginInfo is PluginInfo.
var pluginInfo = fields{"class": str, "type": oneOf{"source", "sink"}, "version": str}

// configKeyInfo is ConfigKeyInfo.
var configKeyInfo = fields{"name": str, "type": str, "required": boolean, "default_value": nullOr{str}, "importance": str,
	"documentation": str, "group": nullOr{str}, "order": num, "width": str, "display_name": str, "dependents": array(str)}

// configInfos is ConfigInfos with at least minErrors errors.
func configInfos(minErrors int, keyed ...shape) shape {
	value := fields{"name": str, "value": nullOr{str}, "recommended_values": array(str), "errors": array(str), "visible": boolean}
	return all{exact{"name": str, "error_count": num, "groups": array(str),
		"configs": nonEmpty(exact{"definition": configKeyInfo, "value": value})}, errorCount(minErrors), all(keyed)}
}

// errorCount matches a ConfigInfos whose error_count is at least min.
type errorCount int

func (e errorCount) check(path string, v any) []string {
	obj, _ := v.(map[string]any)
	if n, _ := obj["error_count"].(float64); int(n) < int(e) {
		return mismatch(path+".error_count", "%v, want at least %d", obj["error_count"], int(e))
	}
	return nil
}

// keyErrors matches a ConfigInfos whose config key has errors holding each of parts.
type keyErrors struct {
	key   string
	parts []string
}

func (k keyErrors) check(path string, v any) []string {
	obj, _ := v.(map[string]any)
	configs, _ := obj["configs"].([]any)
	for _, c := range configs {
		value, _ := c.(map[string]any)["value"].(map[string]any)
		if value["name"] != k.key {
			continue
		}
		errs, _ := value["errors"].([]any)
		if len(errs) == 0 {
			return mismatch(path, "key %s has no errors", k.key)
		}
		return contains(k.parts).check(path+".configs["+k.key+"].errors[0]", errs[0])
	}
	return mismatch(path, "no config %s", k.key)
}

// loggerLevel is LoggerLevel.
var loggerLevel = fields{"level": oneOf{"TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL", "OFF"}}

// activeTopics is GET /connectors/{name}/topics: ActiveTopicsInfo keyed by the name.
func activeTopics(name string) shape {
	return exact{name: exact{"topics": array(str)}}
}
