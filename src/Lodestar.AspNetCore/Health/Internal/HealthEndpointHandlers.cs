using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace Lodestar.AspNetCore.Health.Internal;

/// <summary>The request delegates behind <c>/healthz</c> and <c>/readyz</c>.</summary>
internal static class HealthEndpointHandlers
{
    /// <summary>Liveness: the process answers. No dependency is called, ever.</summary>
    public static Task LivenessAsync(HttpContext context)
    {
        context.Response.StatusCode = StatusCodes.Status200OK;
        return WriteTextAsync(context, "Healthy");
    }

    /// <summary>Readiness: 200 when ready, 503 otherwise; a JSON body with each check when asked (<c>?verbose</c> or <c>Accept: application/json</c>).</summary>
    public static async Task ReadinessAsync(HttpContext context)
    {
        var probe = context.RequestServices.GetRequiredService<ReadinessProbe>();
        var report = await probe.GetAsync(context.RequestAborted).ConfigureAwait(false);
        context.Response.StatusCode = report.IsReady ? StatusCodes.Status200OK : StatusCodes.Status503ServiceUnavailable;
        if (WantsDetail(context.Request))
        {
            await WriteJsonAsync(context, report).ConfigureAwait(false);
        }
        else
        {
            await WriteTextAsync(context, report.IsDraining ? "Draining" : report.Status.ToString()).ConfigureAwait(false);
        }
    }

    internal static bool WantsDetail(HttpRequest request)
    {
        if (request.Query.TryGetValue("verbose", out var verbose))
        {
            return !string.Equals(verbose.ToString(), "false", StringComparison.OrdinalIgnoreCase) && verbose.ToString() != "0";
        }

        foreach (var accept in request.GetTypedHeaders().Accept)
        {
            if (accept.MediaType.Equals("application/json", StringComparison.OrdinalIgnoreCase))
            {
                return true;
            }
        }

        return false;
    }

    private static Task WriteTextAsync(HttpContext context, string text)
    {
        var response = context.Response;
        response.Headers.CacheControl = "no-store";
        response.ContentType = "text/plain; charset=utf-8";
        return HttpMethods.IsHead(context.Request.Method) ? Task.CompletedTask : response.WriteAsync(text, context.RequestAborted);
    }

    private static async Task WriteJsonAsync(HttpContext context, ReadinessReport report)
    {
        var response = context.Response;
        response.Headers.CacheControl = "no-store";
        response.ContentType = "application/json; charset=utf-8";
        if (HttpMethods.IsHead(context.Request.Method))
        {
            return;
        }

        var writer = new Utf8JsonWriter(response.BodyWriter);
        await using (writer.ConfigureAwait(false))
        {
            writer.WriteStartObject();
            writer.WriteString("status", report.IsDraining ? "Draining" : report.Status.ToString());
            writer.WriteBoolean("ready", report.IsReady);
            writer.WriteBoolean("draining", report.IsDraining);
            writer.WriteStartObject("checks");
            foreach (var entry in report.Entries)
            {
                writer.WriteStartObject(entry.Name);
                writer.WriteString("status", entry.Status.ToString());
                writer.WriteNumber("durationMs", Math.Round(entry.Duration.TotalMilliseconds, 3));
                if (entry.Description is not null)
                {
                    writer.WriteString("description", entry.Description);
                }

                writer.WriteEndObject();
            }

            writer.WriteEndObject();
            writer.WriteEndObject();
            await writer.FlushAsync(context.RequestAborted).ConfigureAwait(false);
        }
    }
}
