using System.Collections.Concurrent;
using System.Text.Json;
using Lodestar.Etcd.Client.Internal;
using Lodestar.Etcd.Tests.Infrastructure;
using Lodestar.Testing;
using Lodestar.Testing.Etcd;
using Xunit.Abstractions;

namespace Lodestar.Etcd.Tests.Hostile;

/// <summary>
/// A gateway (or a proxy in front of it) that echoes credentials back, in every place an answer can carry text: the
/// password and every token the client was issued must appear in no error, no exception text and no log line.
/// </summary>
public sealed class EtcdHostileSecretTests(ITestOutputHelper output)
{
    private const string Password = "Hostile-Pa55word-42";
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(10);

    private static string Go(int port) => $"{{\"Op\":0,\"Addr\":\"127.0.0.1:{port}\",\"Metadata\":null}}";

    /// <summary>A gRPC-gateway error body whose message is <paramref name="message"/>, JSON-escaped.</summary>
    private static string ErrorBody(string message, int code)
        => $"{{\"error\":{JsonSerializer.Serialize(message)},\"message\":{JsonSerializer.Serialize(message)},\"code\":{code}}}";

    [Fact]
    public async Task EchoedCredentials_InBodiesHeadersAndCancelReasons_NeverReachErrorsOrLogs()
    {
        // Arrange: auth on; one process resolves (and so holds a first token).
        await using var fake = await FakeEtcdGateway.StartAsync();
        fake.Put("orders/a", Go(7001));
        fake.EnableAuth("root", Password);
        await using var harness = EtcdHarness.Create(fake.Url, o =>
        {
            o.Username = "root";
            o.Password = Password;
        });
        using var tracker = new SetTracker(harness.Resolver, "orders");
        var sourceErrors = new ConcurrentQueue<Exception>();
        using var errorWatch = harness.Resolver.Watch("orders", "etcd", _ => { }, sourceErrors.Enqueue);
        await Eventually.TrueAsync(() => tracker.Addresses.Count == 1 && fake.OpenWatches == 1, s_wait, "the first set over auth");
        var first = Assert.Single(fake.IssuedTokens);
        var errors = new List<Exception>();

        // Act 1: raw HTTP with an invalid header name made of the token and the password (.NET quotes invalid names).
        fake.RawResponder = head =>
        {
            var token = head.Split("\r\n").FirstOrDefault(l => l.StartsWith("Authorization:", StringComparison.OrdinalIgnoreCase))?["Authorization:".Length..].Trim();
            return $"HTTP/1.1 200 OK\r\nContent-Length: 2\r\necho {token} {Password}: x\r\n\r\n{{}}";
        };
        errors.Add(await Assert.ThrowsAsync<EtcdException>(() => harness.Client.RangePrefixAsync("orders/", default)));
        fake.RawResponder = null;

        // Act 2: the token is rejected; the client authenticates again; the retry gets a 500 echoing every token issued
        // (the rejected one included) and the request.
        fake.RejectIssuedTokens();
        fake.RangeFault = r => r.Authorization == first
            ? null
            : FakeEtcdAnswer.Status(500, ErrorBody($"upstream rejected Authorization: {r.Authorization} (earlier {string.Join(", ", fake.IssuedTokens)}); body {r.Body}; password {Password}", 13));
        errors.Add(await Assert.ThrowsAsync<EtcdException>(() => harness.Client.RangePrefixAsync("orders/", default)));

        // Act 3: a proxy's HTML error page echoing the same.
        fake.RangeFault = r =>
        {
            var page = FakeEtcdAnswer.Status(403, $"<html><body>Forbidden. Authorization: {r.Authorization}; tokens {string.Join(" ", fake.IssuedTokens)}; password={Password}</body></html>");
            page.ContentType = "text/html";
            return page;
        };
        errors.Add(await Assert.ThrowsAsync<EtcdException>(() => harness.Client.RangePrefixAsync("orders/", default)));
        fake.RangeFault = null;

        // Act 4: authentication fails with a 401 echoing the authenticate request (the password in it).
        fake.RejectIssuedTokens();
        fake.AuthenticateFault = r => FakeEtcdAnswer.Status(401, ErrorBody($"bad request {r.Body}", 16));
        errors.Add(await Assert.ThrowsAsync<EtcdException>(() => harness.Client.RangePrefixAsync("orders/", default)));
        fake.AuthenticateFault = null;

        // Act 5: the source's next watch is cancelled with a reason echoing its token and the password.
        fake.WatchFault = w => FakeEtcdAnswer.Json(
            "{\"result\":{\"created\":true}}\n{\"result\":{\"canceled\":true,\"cancel_reason\":" + JsonSerializer.Serialize($"permission denied for {w.Authorization} / {Password}") + "}}\n");
        fake.CutWatches();
        await Eventually.TrueAsync(() => sourceErrors.Any(e => e.Message.Contains("cancelled the watch", StringComparison.Ordinal)), s_wait, "the cancelled watch is reported");
        fake.WatchFault = null;

        // Assert: the errors say what happened and where...
        Assert.All(errors, e => Assert.Contains(fake.Url, e.Message, StringComparison.Ordinal));
        Assert.Contains("invalid header name: 'echo *** ***'", errors[0].Message, StringComparison.Ordinal);
        Assert.Contains("HTTP 500", errors[1].Message, StringComparison.Ordinal);
        Assert.Contains("HTTP 403", errors[2].Message, StringComparison.Ordinal);
        Assert.Contains("Forbidden", errors[2].Message, StringComparison.Ordinal);
        Assert.Contains("could not authenticate user 'root'", errors[3].Message, StringComparison.Ordinal);
        var cancelled = sourceErrors.First(e => e.Message.Contains("cancelled the watch", StringComparison.Ordinal));
        Assert.Contains(fake.Url, cancelled.Message, StringComparison.Ordinal);
        Assert.Contains("permission denied", cancelled.Message, StringComparison.Ordinal);

        // ...and hold no secret, nor does any log line (Trace included).
        var tokens = fake.IssuedTokens;
        Assert.True(tokens.Count >= 3, $"{tokens.Count} tokens issued");
        var texts = errors.Concat(sourceErrors).Select(e => e.ToString()).Append(harness.Logs.AllText).ToList();
        foreach (var error in errors.Append(cancelled))
        {
            output.WriteLine(error.Message);
        }

        foreach (var text in texts)
        {
            Assert.DoesNotContain(Password, text, StringComparison.Ordinal);
            Assert.All(tokens, token => Assert.DoesNotContain(token, text, StringComparison.Ordinal));
        }
    }
}
