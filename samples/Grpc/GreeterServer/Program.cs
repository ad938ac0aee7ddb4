// The "greeter" gRPC service: one instance per process. Run two of them on different ports (see samples/README.md).
using Grpc.Core;
using Lodestar.Samples.Grpc;

var builder = WebApplication.CreateBuilder(args);
builder.Services.AddGrpc();

var app = builder.Build();
app.MapGrpcService<GreeterService>();
app.Run();

internal sealed class GreeterService(IConfiguration configuration) : Greeter.GreeterBase
{
    private readonly string _instance = configuration["Instance"] ?? "greeter";

    public override Task<HelloReply> SayHello(HelloRequest request, ServerCallContext context)
        => Task.FromResult(new HelloReply { Message = $"Hello {request.Name}", ServedBy = _instance });
}
