// Calls "greeter" through Lodestar: the lodestar:/// resolver feeds the channel the instances listed in configuration
// (Lodestar:Services:greeter:Endpoints in appsettings.json), and the lodestar_least_request balancer picks one per call.
using Grpc.Core;
using Grpc.Net.Client;
using Lodestar.Grpc;
using Lodestar.Samples.Grpc;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

// appsettings.json is read from the build output, wherever `dotnet run` is started from.
var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { Args = args, ContentRootPath = AppContext.BaseDirectory });
builder.Services.AddLodestarGrpc(); // Lodestar, the lodestar:/// resolver and the lodestar_* balancers
using var host = builder.Build();

var calls = builder.Configuration.GetValue("Calls", 10);

// One channel per service, kept for the life of the process: balancing state lives in it.
using var channel = GrpcChannel.ForAddress("lodestar:///greeter", new GrpcChannelOptions { Credentials = ChannelCredentials.Insecure }
    .UseLodestar(host.Services, LodestarGrpcPolicies.LeastRequest));
var client = new Greeter.GreeterClient(channel);

for (var i = 0; i < calls; i++)
{
    // Wait for a ready instance rather than fail at once while the channel connects.
    var reply = await client.SayHelloAsync(new HelloRequest { Name = $"call {i + 1}" },
        new CallOptions(deadline: DateTime.UtcNow.AddSeconds(5)).WithWaitForReady());
    Console.WriteLine($"{reply.Message}, served by {reply.ServedBy}");
}
