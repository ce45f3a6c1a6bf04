// The CloudDocs API, called with the user's access token (CORS allows this app's origin only).
import { authorizedFetch } from "/auth.js";

let base = "";

export function configureApi(apiUrl) {
  base = apiUrl.replace(/\/$/, "");
}

export class ApiError extends Error {}

async function call(method, path, body) {
  const init = { method, headers: {} };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await authorizedFetch(base + path, init);
  } catch (error) {
    if (error instanceof TypeError) throw new ApiError("The documents service cannot be reached. Try again in a moment.");
    throw error;
  }
  if (response.status === 404) throw new ApiError("That document no longer exists.");
  if (response.status === 422) throw new ApiError("Check the title (1 to 200 characters) and the text.");
  if (!response.ok) throw new ApiError(`The documents service answered ${response.status}. Try again in a moment.`);
  return response.status === 204 ? null : response.json();
}

export const listDocuments = () => call("GET", "/documents");
export const readDocument = (id) => call("GET", `/documents/${encodeURIComponent(id)}`);
export const createDocument = (doc) => call("POST", "/documents", doc);
export const updateDocument = (id, doc) => call("PUT", `/documents/${encodeURIComponent(id)}`, doc);
export const deleteDocument = (id) => call("DELETE", `/documents/${encodeURIComponent(id)}`);
