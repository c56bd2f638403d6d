// What a failed call means to the person looking at the page, and what they can do about it.
import { Code, ConnectError } from "@connectrpc/connect";

export interface ErrorAdvice {
  title: string;
  detail: string;
  advice: string;
}

export function adviseOn(error: unknown): ErrorAdvice {
  const connectError = ConnectError.from(error);
  const detail = connectError.rawMessage || connectError.message;
  switch (connectError.code) {
    case Code.Unavailable:
      return {
        title: "The service is not answering",
        detail,
        advice: "Is the stack running? `make up` starts it; `financelake status` shows what is healthy.",
      };
    case Code.DeadlineExceeded:
      return { title: "The service took too long", detail, advice: "It may be busy: retry in a moment." };
    case Code.InvalidArgument:
      return { title: "The request was refused", detail, advice: "Correct the fields named above and try again." };
    case Code.NotFound:
      return { title: "Not found", detail, advice: "Check the name, or import its data from the Import page." };
    case Code.FailedPrecondition:
      return { title: "Not ready yet", detail, advice: "The data or model it needs is not there yet: retry shortly." };
    case Code.ResourceExhausted:
      return { title: "Too many requests", detail, advice: "The gateway is shedding load: retry in a moment." };
    case Code.Canceled:
      return { title: "Cancelled", detail, advice: "Retry when you are ready." };
    default:
      return { title: "Something went wrong", detail, advice: "Retry; if it keeps failing, the server logs under .financelake/logs say why." };
  }
}
