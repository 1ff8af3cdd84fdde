"""Names vulture reports as unused that are used, each with why (`make deadcode`).

vulture reads this file as source: a name written here counts as used everywhere. It is never
imported. `_` stands for "an object of whatever class"; `# file:line` is where the finding was.
Delete an entry when its code goes; add one only with a reason that is not "tests use it".
"""

# ruff: noqa

# --- pydantic / pydantic-settings hooks (read by the library, never by our code) -------------
_.model_config  # class configuration of every pydantic model / BaseSettings (13 classes)
_.settings_customise_sources  # adapters/config/environment_settings.py:39 classmethod hook
env_settings  # environment_settings.py:44 the hook's signature: parameters it must accept
dotenv_settings  # environment_settings.py:45 same signature, unused on purpose (no .env)
file_secret_settings  # environment_settings.py:46 same signature (no secrets directory)
_._load_env_vars  # environment_settings.py:59 EnvSettingsSource override: reads a given mapping
# @model_validator / @field_validator methods: pydantic calls them while validating.
_._host_is_given  # adapters/config/worker_config.py:231
_._only_vm_isolations  # worker_config.py:260
_._exactly_one  # worker_config.py:272
_._known_keys  # app/controller/config_file.py:97
_._instances  # config_file.py:120
_._starlark_http  # config_file.py:152
_._web  # config_file.py:159
_._grpc  # config_file.py:173
_._config_limit  # config_file.py:178
_._snapshot_max_bytes  # config_file.py:188

# --- overrides and protocol methods that a library calls ----------------------------------
_.scan_to_next_token  # adapters/cirrus_config/yaml_source.py:171 PyYAML Scanner override
_.scan_plain_spaces  # yaml_source.py:193 PyYAML Scanner override (libyaml's tab rules)
_.shouldRollover  # adapters/logging/rotation.py:81 logging.handlers rollover hook
_.doRollover  # rotation.py:94 logging.handlers rollover hook
_.capture_signals  # adapters/http_server/serving.py:37 uvicorn.Server override
_.to_string  # app/controller/artifacts_api.py:41 Starlette Convertor method (url_path_for)
_.__getitem__  # adapters/storage/stored_records.py:34 Protocol of a DB row (sqlite3.Row, dict)
# __exit__/__aexit__ parameters the context manager protocol requires.
exc_type  # adapters/controller_api.py:275, adapters/telemetry/health.py:120, app/status_view.py:223
traceback  # controller_api.py:277, health.py:122, status_view.py:225
other_options  # app/worker_options.py:75 **kwargs: a command passes all its options, extras ignored

# --- attributes a library reads --------------------------------------------------------------
_.row_factory  # adapters/storage/sqlite_connection.py:33 sqlite3.Connection: rows by name
_.should_exit  # app/controller/run_controller.py:86, app/local_embedded.py:163 uvicorn.Server stop
# tarfile.TarInfo owner fields: snapshots are reproducible (no host uid/user in the archive).
_.uid  # adapters/workspace/snapshot.py:71
_.gid  # snapshot.py:71
_.uname  # snapshot.py:72
_.gname  # snapshot.py:72
# The OTel SDK's MeterProvider reads it on every get_meter(): forced off so /metrics is served
# even when OTEL_SDK_DISABLED is set (a private attribute: see issue 19 item 6).
_._disabled  # adapters/telemetry/controller_instruments.py:348, adapters/telemetry/setup.py:178

# --- click commands (registered by their decorators, called by click) ------------------------
validate  # app/cli.py:79 `cirrus validate`
submit  # app/user_commands.py:149 `cirrus submit`
resume  # app/worker_commands.py:217 `cirrus worker resume`

# --- read by Jinja templates (src/app/web/templates/task.html) -------------------------------
_.later  # app/web/log_view.py:64 the "Later" link of a log page
_.at_tail  # app/web/log_view.py:69 which logs the live view follows

# --- wire and stored fields (proto fields mapped by name, table columns) ---------------------
# Carried from the .cirrus.yml / controller to the worker (the twirp/gRPC mappings name them in
# strings), or read back from the store; part of the record even where no rule reads them yet.
mount_temporary_working_directory_from_host  # domain/isolation.py:136 Tart isolation
sync_time_over_ssh  # domain/isolation.py:141, 177 Tart and Vetu isolation
standard_output_to_logs  # domain/isolation.py:178 Vetu isolation
cli_version  # domain/protocol.py:87 proto AgentAwareTask.cli_version
TRIGGERED  # domain/protocol.py:136 proto TaskStatus value (decoded from the wire)
creation_timestamp  # domain/protocol.py:289 proto CacheInfo.creation_timestamp
change_author  # domain/source.py:59 the source's CIRRUS_CHANGE_AUTHOR (JSON "changeAuthor")
registered_at  # domain/store_records.py:185 workers.registered_at column

# --- observation points: the only way to see an outcome that has no other effect -------------
METRIC_NAMES  # adapters/telemetry/instruments.py:36, controller_instruments.py:51: the documented
# list of exported metric names; the telemetry tests check every one is exported.
_.host_directory  # adapters/container/instance.py:226: tests check the host directory is removed
_.fingerprint  # adapters/secrets/cipher.py:118: tests check a key persisted across restarts
_.open_connections  # adapters/telemetry/health.py:89: tests check keep-alive connections close
_.busy  # app/worker/standby.py:99: tests wait for a background create/destroy to end
_.held_back  # domain/masking.py:60: tests check the streaming masker's bounded buffer
_.key_list  # domain/cirrus_config/nodes.py:54: tests check the parsed tree's key order

# --- framework attributes and click commands -------------------------------------------------
_.redirect_slashes  # app/controller/server.py: Starlette's Router reads it
rotate_tokens  # app/controller_commands.py: a click command, called by click
_.claim_for  # app/controller/scheduler_service.py: the scheduler's claim for one worker outside
#   a poll; tests/integration/controller/test_scheduler_queue.py drives the queue rules with it
