// Parse and semantically analyse KQL files with the official Kusto language service, against the columns of
// the Application Insights tables the service's queries use. Prints one JSON line per file:
// {"file", "diagnostics": [{"severity", "message", "start"}], "columns": [{"name", "type"}]}, columns being the
// result schema the service infers (what a log alert can use as its measure and dimensions, [] when the
// result is not a table); exits 1 when any file has an error.
//
//   node scripts/kql_check.cjs FILE.kql [...]
"use strict";
const fs = require("fs");
const path = require("path");

const service = path.join(__dirname, "..", "node_modules", "@kusto", "language-service-next");
require(path.join(service, "bridge.js"));
require(path.join(service, "Kusto.Language.Bridge.js"));
const K = global.Kusto.Language;

// Application Insights (classic) tables as Log Analytics exposes them to queries scoped to the component.
const common = "timestamp:datetime, itemType:string, customDimensions:dynamic, customMeasurements:dynamic, " +
  "operation_Name:string, operation_Id:string, operation_ParentId:string, session_Id:string, user_Id:string, " +
  "user_AuthenticatedId:string, cloud_RoleName:string, cloud_RoleInstance:string, appId:string, appName:string, " +
  "iKey:string, sdkVersion:string, itemId:string, itemCount:int, client_Type:string, client_IP:string";
const tables = {
  customEvents: `(name:string, ${common})`,
  requests: `(id:string, name:string, url:string, success:bool, resultCode:string, duration:real, ` +
    `performanceBucket:string, source:string, ${common})`,
  traces: `(message:string, severityLevel:int, ${common})`,
  exceptions: `(problemId:string, handledAt:string, type:string, message:string, assembly:string, method:string, ` +
    `outerType:string, outerMessage:string, outerAssembly:string, outerMethod:string, innermostType:string, ` +
    `innermostMessage:string, innermostAssembly:string, innermostMethod:string, severityLevel:int, ` +
    `details:dynamic, ${common})`,
};
const symbols = Object.entries(tables).map(([name, schema]) => new K.Symbols.TableSymbol.$ctor7(name, schema, null));
const database = new K.Symbols.DatabaseSymbol.ctor("applicationinsights", symbols);
const globals = K.GlobalState.Default.WithDatabase(database);

function resultColumns(code) {
  const result = code.ResultType;
  if (!(result instanceof K.Symbols.TableSymbol)) return [];
  const columns = [];
  for (let index = 0; index < System.Array.getCount(result.Columns, K.Symbols.ColumnSymbol); index++) {
    const column = System.Array.getItem(result.Columns, index, K.Symbols.ColumnSymbol);
    columns.push({ name: column.Name, type: column.Type.Name });
  }
  return columns;
}

let failed = false;
for (const file of process.argv.slice(2)) {
  const code = K.KustoCode.ParseAndAnalyze(fs.readFileSync(file, "utf8"), globals);
  const found = code.GetDiagnostics();
  const diagnostics = [];
  for (let index = 0; index < found.Count; index++) {
    const item = found.getItem(index);
    diagnostics.push({ severity: String(item.Severity), message: item.Message, start: item.Start });
    if (String(item.Severity) === "Error") failed = true;
  }
  console.log(JSON.stringify({ file, diagnostics, columns: resultColumns(code) }));
}
process.exit(failed ? 1 : 0);
