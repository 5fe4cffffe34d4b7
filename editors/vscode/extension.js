// Starts `rekindle lsp` for .plain files. Install: `npm install` here, then
// `npx @vscode/vsce package` and install the .vsix (or open this folder and press F5).
const vscode = require("vscode");
const { LanguageClient } = require("vscode-languageclient/node");

let client;

function activate(context) {
  const command = vscode.workspace.getConfiguration("rekindle").get("path") || "rekindle";
  const server = { command, args: ["lsp"] };
  client = new LanguageClient(
    "rekindle",
    "rekindle",
    { run: server, debug: server },
    { documentSelector: [{ scheme: "file", language: "plain" }] }
  );
  context.subscriptions.push(client);
  return client.start();
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
