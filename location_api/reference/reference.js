// The API reference page (GET /docs): renders this instance's /openapi.json with plain DOM
// calls. Every string of the document goes in as text, never as markup.
"use strict";

const METHODS = ["get", "post", "put", "patch", "delete", "head", "options"];

/** An element with attributes and children (strings become text nodes). */
function el(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, value);
  for (const child of children) {
    if (child === null || child === undefined) continue;
    element.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return element;
}

/** What a local reference ("#/components/schemas/Business") points to in the document. */
function resolve(doc, value) {
  let seen = 0;
  while (value && typeof value.$ref === "string" && value.$ref.startsWith("#/") && seen++ < 8) {
    value = value.$ref
      .slice(2)
      .split("/")
      .map((part) => part.replaceAll("~1", "/").replaceAll("~0", "~"))
      .reduce((node, part) => (node === undefined ? undefined : node[part]), doc);
  }
  return value || {};
}

/** A schema's constraints in one line: "integer, 1 to 100", "string, pattern ^a$". */
function constraints(schema) {
  const parts = [];
  const type = Array.isArray(schema.type) ? schema.type.join(" | ") : schema.type;
  if (type) parts.push(type);
  if ("const" in schema) parts.push(`= ${JSON.stringify(schema.const)}`);
  if (schema.enum) parts.push(`one of ${schema.enum.map((v) => JSON.stringify(v)).join(", ")}`);
  if (schema.format) parts.push(`format ${schema.format}`);
  if (schema.minimum !== undefined || schema.maximum !== undefined) {
    parts.push(`${schema.minimum ?? "…"} to ${schema.maximum ?? "…"}`);
  }
  if (schema.minLength !== undefined || schema.maxLength !== undefined) {
    parts.push(`${schema.minLength ?? 0} to ${schema.maxLength ?? "…"} characters`);
  }
  if (schema.maxItems !== undefined) parts.push(`at most ${schema.maxItems} items`);
  if (schema.pattern) parts.push(`pattern ${schema.pattern}`);
  if (schema.default !== undefined) parts.push(`default ${JSON.stringify(schema.default)}`);
  return parts.join(", ");
}

/** A schema as nested lists: a reference is a link to its entry under Schemas. */
function schemaNode(doc, schema, depth = 0) {
  if (!schema) return el("span", { class: "muted" }, "(any)");
  if (typeof schema.$ref === "string") {
    const name = schema.$ref.split("/").pop();
    if (schema.$ref.startsWith("#/components/schemas/")) return el("a", { href: `#schema-${name}` }, name);
    return schemaNode(doc, resolve(doc, schema), depth);
  }
  const node = el("span", {}, constraints(schema));
  if (schema.description) node.append(el("span", { class: "muted" }, ` — ${schema.description}`));
  if (depth > 6) return node;
  if (schema.type === "array" && schema.items) {
    node.append(" of ", schemaNode(doc, schema.items, depth + 1));
  }
  for (const key of ["oneOf", "anyOf", "allOf"]) {
    if (!schema[key]) continue;
    const list = el("ul");
    for (const option of schema[key]) list.append(el("li", {}, `${key}: `, schemaNode(doc, option, depth + 1)));
    node.append(list);
  }
  if (schema.properties) {
    const required = new Set(schema.required || []);
    const list = el("ul");
    for (const [name, property] of Object.entries(schema.properties)) {
      const mark = required.has(name) ? el("span", { class: "required", title: "required" }, " *") : null;
      list.append(el("li", {}, el("code", {}, name), mark, ": ", schemaNode(doc, property, depth + 1)));
    }
    node.append(list);
  }
  return node;
}

function schemaBlock(doc, content) {
  const block = el("div", { class: "schema" });
  for (const [type, media] of Object.entries(content || {})) {
    block.append(el("div", {}, el("code", {}, type), ": ", schemaNode(doc, media.schema)));
  }
  return block;
}

function table(headings, rows) {
  return el(
    "table",
    {},
    el("thead", {}, el("tr", {}, ...headings.map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, ...rows.map((cells) => el("tr", {}, ...cells.map((c) => el("td", {}, c))))),
  );
}

function parametersTable(doc, parameters) {
  const rows = parameters.map((p) => {
    const parameter = resolve(doc, p);
    return [
      el("code", {}, parameter.name || ""),
      parameter.in || "",
      parameter.required ? "yes" : "no",
      el("div", { class: "schema" }, schemaNode(doc, parameter.schema)),
      parameter.description || "",
    ];
  });
  return table(["name", "in", "required", "schema", "description"], rows);
}

function responsesTable(doc, responses) {
  const rows = Object.entries(responses).map(([status, r]) => {
    const response = resolve(doc, r);
    const headers = Object.keys(response.headers || {}).map((name) => el("div", {}, el("code", {}, name)));
    return [el("code", {}, status), response.description || "", schemaBlock(doc, response.content), el("div", {}, ...headers)];
  });
  return table(["status", "meaning", "body", "headers"], rows);
}

function operationSection(doc, path, method, operation, id) {
  const section = el(
    "section",
    { class: "operation", id },
    el("h2", {}, el("span", { class: `method ${method}` }, method.toUpperCase()), " ", el("code", {}, path)),
  );
  if (operation.summary) section.append(el("p", {}, operation.summary));
  if (operation.description) section.append(el("p", { class: "muted" }, operation.description));
  if (operation.security && operation.security.length) {
    const schemes = operation.security.flatMap((s) => Object.keys(s)).join(", ");
    section.append(el("p", {}, "Authentication: ", el("code", {}, schemes)));
  }
  const parameters = operation.parameters || [];
  if (parameters.length) section.append(el("h3", {}, "Parameters"), parametersTable(doc, parameters));
  if (operation.requestBody) {
    const body = resolve(doc, operation.requestBody);
    section.append(el("h3", {}, body.required ? "Body (required)" : "Body"), schemaBlock(doc, body.content));
  }
  section.append(el("h3", {}, "Responses"), responsesTable(doc, operation.responses || {}));
  return section;
}

function render(doc) {
  const info = doc.info || {};
  document.title = `${info.title || "API"}: reference`;
  document.getElementById("title").textContent = `${info.title || "API"} ${info.version || ""}`.trim();
  document.getElementById("description").textContent = info.description || "";
  const contents = el("ul");
  const operations = document.getElementById("operations");
  let count = 0;
  for (const path of Object.keys(doc.paths || {}).sort()) {
    const item = doc.paths[path];
    for (const method of METHODS) {
      if (!item[method]) continue;
      const id = `op-${count++}`;
      const summary = item[method].summary ? ` — ${item[method].summary}` : "";
      contents.append(el("li", {}, el("a", { href: `#${id}` }, `${method.toUpperCase()} ${path}`), summary));
      operations.append(operationSection(doc, path, method, item[method], id));
    }
  }
  document.getElementById("contents").append(el("h2", {}, "Routes"), contents);
  const schemas = document.getElementById("schemas");
  const components = (doc.components && doc.components.schemas) || {};
  schemas.append(el("h2", {}, "Schemas"));
  for (const [name, schema] of Object.entries(components)) {
    schemas.append(el("h3", { id: `schema-${name}` }, name), el("div", { class: "schema" }, schemaNode(doc, schema)));
  }
  const status = document.getElementById("status");
  status.textContent = `${count} operations, from `;
  status.append(el("a", { href: "/openapi.json" }, "/openapi.json"), ` (OpenAPI ${doc.openapi || "?"}).`);
}

async function main() {
  const status = document.getElementById("status");
  try {
    const response = await fetch("/openapi.json", { headers: { Accept: "application/json" } });
    if (!response.ok) throw new Error(`the server answered ${response.status}`);
    render(await response.json());
  } catch (error) {
    status.textContent = `Could not load /openapi.json: ${error.message}`;
  }
}

main();
