// Node-RED settings for bench/peers.py: the flow alone, no editor, warnings only.
module.exports = {
  uiHost: "127.0.0.1",
  uiPort: Number(process.env.PORT || 1880),
  flowFile: "flows.json",
  credentialSecret: false,
  httpAdminRoot: false,
  logging: { console: { level: "warn", metrics: false, audit: false } },
  functionExternalModules: false,
  externalModules: { autoInstall: false, palette: { allowInstall: false } },
  telemetry: { enabled: false },
};
