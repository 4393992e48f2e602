// The Restate peer of the kar `Bench` actor: a virtual object `Counter` whose handler
// `add` reads its state, adds the request's number and writes it back (Restate ships
// the object's state with the invocation and journals the write with the result).
import * as http2 from "node:http2";
import * as restate from "@restatedev/restate-sdk";

const counter = restate.object({
  name: "Counter",
  handlers: {
    add: async (ctx, delta) => {
      const count = ((await ctx.get("count")) ?? 0) + (Number(delta) || 0);
      ctx.set("count", count);
      return count;
    },
  },
});

// On loopback only (restate.serve would listen on every interface).
const port = Number(process.env.PORT || 9080);
http2
  .createServer(restate.createEndpointHandler({ services: [counter] }))
  .listen(port, "127.0.0.1");

