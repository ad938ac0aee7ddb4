using System.Globalization;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Yarp.ReverseProxy.Configuration;

// A YARP 2.3 reverse proxy for the scenario runner, in a process of its own as a proxy would be deployed: one loopback
// listener, one cluster of the given backends under one load-balancing policy. Prints "listening <port>" once it serves:
// with no --port (or 0) the system chooses a free port as the listener binds it, so no other process can take it between
// a choice and the bind.
// With --exit-with-stdin it stops when its standard input closes, so it cannot outlive the runner that started it.
//
//   Lodestar.YarpProxy [--port 5000] --policy PowerOfTwoChoices --backends http://127.0.0.1:5001,http://127.0.0.1:5002 [--h2] [--exit-with-stdin]
var port = 0;
var policy = "PowerOfTwoChoices";
var backends = Array.Empty<string>();
var http2 = false;
var exitWithStdin = false;
for (var i = 0; i < args.Length; i++)
{
    switch (args[i])
    {
        case "--port":
            port = int.Parse(args[++i], CultureInfo.InvariantCulture);
            break;
        case "--policy":
            policy = args[++i];
            break;
        case "--backends":
            backends = args[++i].Split(',', StringSplitOptions.RemoveEmptyEntries);
            break;
        case "--h2":
            http2 = true;
            break;
        case "--exit-with-stdin":
            exitWithStdin = true;
            break;
    }
}

if (port is < 0 or > 65535 || backends.Length == 0 || backends.Any(b => !b.StartsWith("http://127.0.0.1:", StringComparison.Ordinal)))
{
    await Console.Error.WriteLineAsync("usage: [--port <0-65535>] --policy <name> --backends http://127.0.0.1:<port>,... [--h2] (loopback backends only)");
    return 2;
}

var builder = WebApplication.CreateSlimBuilder();
builder.Logging.ClearProviders();
builder.WebHost.ConfigureKestrel(k => k.Listen(System.Net.IPAddress.Loopback, port, l => l.Protocols = http2 ? HttpProtocols.Http2 : HttpProtocols.Http1));
builder.Services.AddReverseProxy().LoadFromMemory(
    [new RouteConfig { RouteId = "all", ClusterId = "backends", Match = new RouteMatch { Path = "{**rest}" } }],
    [
        new ClusterConfig
        {
            ClusterId = "backends",
            LoadBalancingPolicy = policy,
            HttpRequest = http2 ? new Yarp.ReverseProxy.Forwarder.ForwarderRequestConfig { Version = System.Net.HttpVersion.Version20, VersionPolicy = HttpVersionPolicy.RequestVersionExact } : null,
            Destinations = backends.Select((b, i) => (b, i)).ToDictionary(x => "d" + x.i.ToString(CultureInfo.InvariantCulture), x => new DestinationConfig { Address = x.b }),
        },
    ]);
var app = builder.Build();
app.MapReverseProxy();
await app.StartAsync();
if (exitWithStdin)
{
    var lifetime = app.Lifetime;
    _ = Task.Run(async () =>
    {
        while (await Console.In.ReadLineAsync() is not null)
        {
        }

        lifetime.StopApplication();
    });
}

// Once started, the application's URLs are the addresses its listener bound.
var bound = app.Urls.Single();
Console.WriteLine("listening " + new Uri(bound).Port.ToString(CultureInfo.InvariantCulture));
await app.WaitForShutdownAsync();
return 0;
