using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Lodestar.Testing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace Lodestar.AspNetCore.Tests.Diagnostics;

[Collection(ActivityListenerCollection.Name)]
public sealed class AttemptTracingTests
{
    [Fact]
    public async Task SendAsync_FirstEndpointRefusesConnection_OneParentSpanWithOneChildPerAttempt()
    {
        // Arrange
        using var spans = new SpanRecorder("Lodestar.Tests.Caller");
        await using var backend = await TestBackend.StartAsync("good");
        var refusedPort = FreePort();
        var registry = new MutableConfigurationSource();
        registry.Provider.SetEndpoints("orders", $"127.0.0.1:{refusedPort}", backend.Address);
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddSingleton<IConfiguration>(new ConfigurationBuilder().Add(registry).Build());
        services.AddHttpClient("orders").AddLodestar();
        await using var provider = services.BuildServiceProvider();
        var client = provider.GetRequiredService<IHttpClientFactory>().CreateClient("orders");

        // Act: round robin sends one of the first two requests to the refused endpoint first.
        Activity? retried = null;
        for (var i = 0; i < 10 && retried is null; i++)
        {
            using var parent = spans.Caller.StartActivity("caller")!;
            using var response = await client.GetAsync("http://orders/x");
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            parent.Stop();
            if (spans.ChildrenOf(parent).Count == 2)
            {
                retried = parent;
            }
        }

        // Assert
        Assert.NotNull(retried);
        var attempts = spans.ChildrenOf(retried).OrderBy(a => (int)a.GetTagItem("lodestar.attempt")!).ToList();
        Assert.All(attempts, a =>
        {
            Assert.Equal("lodestar.attempt", a.OperationName);
            Assert.Equal(retried.TraceId, a.TraceId);
            Assert.Equal(retried.SpanId, a.ParentSpanId);
            Assert.Equal("orders", a.GetTagItem("lodestar.service"));
        });
        Assert.Equal(1, attempts[0].GetTagItem("lodestar.attempt"));
        Assert.Equal($"127.0.0.1:{refusedPort}", attempts[0].GetTagItem("lodestar.endpoint"));
        Assert.Equal("connect_failure", attempts[0].GetTagItem("lodestar.outcome"));
        Assert.Equal(ActivityStatusCode.Error, attempts[0].Status);
        Assert.Equal(2, attempts[1].GetTagItem("lodestar.attempt"));
        Assert.Equal(backend.Address, attempts[1].GetTagItem("lodestar.endpoint"));
        Assert.Equal("success", attempts[1].GetTagItem("lodestar.outcome"));
        Assert.Equal(200, attempts[1].GetTagItem("http.response.status_code"));
    }

    private static int FreePort()
    {
        // Bind and release: nothing listens there afterwards, so connecting is refused at once.
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)socket.LocalEndPoint!).Port;
    }
}
