using OrleansLimiter.Tests.Infrastructure;
using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using OrleansLimiter.Hosting;

namespace OrleansLimiter.Tests.Silo;

/// <summary>
/// Who may use /admin and a loopback-only dashboard, checked on the same endpoint filter and
/// middleware the silo uses, with the caller's address set on the request (no traffic beyond loopback).
/// </summary>
[Trait(Tier.Name, Tier.Unit)]
public sealed class OperatorAccessTests
{
    private const string Remote = "203.0.113.7";

    [Theory]
    [InlineData(Remote)]
    [InlineData("10.0.0.5")]
    [InlineData("2001:db8::7")]
    public async Task Admin_WithoutKey_Refuses403_BeyondLoopback(string caller) =>
        Assert.Equal(StatusCodes.Status403Forbidden, await CallAdminAsync(adminKey: null, caller, sentKey: null));

    [Theory]
    [InlineData("127.0.0.1")]
    [InlineData("::1")]
    public async Task Admin_WithoutKey_ServesLoopback(string caller) =>
        Assert.Equal(StatusCodes.Status200OK, await CallAdminAsync(adminKey: null, caller, sentKey: null));

    [Fact]
    public async Task Admin_WithKey_ServesAnyCallerThatSendsIt()
    {
        Assert.Equal(StatusCodes.Status200OK, await CallAdminAsync("k-123", Remote, "k-123"));
        Assert.Equal(StatusCodes.Status200OK, await CallAdminAsync("k-123", "127.0.0.1", "k-123"));
    }

    [Theory]
    [InlineData(Remote, null)]
    [InlineData(Remote, "wrong")]
    [InlineData("127.0.0.1", null)]
    public async Task Admin_WithKey_Refuses401_WithoutTheRightKey(string caller, string? sentKey) =>
        Assert.Equal(StatusCodes.Status401Unauthorized, await CallAdminAsync("k-123", caller, sentKey));

    [Fact]
    public void AdminRefusal_IsNull_WhenAllowed_AndNamesTheStatus_WhenNot()
    {
        Assert.Null(OperatorAccess.AdminRefusal(Request("/admin/providers", "127.0.0.1"), adminKey: null));
        var refusal = Assert.IsAssignableFrom<IStatusCodeHttpResult>(OperatorAccess.AdminRefusal(Request("/admin/providers", Remote), adminKey: null));
        Assert.Equal(StatusCodes.Status403Forbidden, refusal.StatusCode);
    }

    [Theory]
    [InlineData("/dashboard")]
    [InlineData("/dashboard/")]
    [InlineData("/dashboard/ClusterStats")]
    public async Task LoopbackOnlyDashboard_Refuses404_BeyondLoopback(string path) =>
        Assert.Equal(StatusCodes.Status404NotFound, await CallLoopbackOnlyAsync(path, Remote));

    [Theory]
    [InlineData("/dashboard/", "127.0.0.1")]
    [InlineData("/dashboard/", "::1")]
    [InlineData("/health", Remote)]
    [InlineData("/dashboards", Remote)]
    public async Task LoopbackOnlyDashboard_ServesLoopback_AndLeavesOtherPathsAlone(string path, string caller) =>
        Assert.Equal(StatusCodes.Status200OK, await CallLoopbackOnlyAsync(path, caller));

    private static async Task<int> CallAdminAsync(string? adminKey, string caller, string? sentKey)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        await using var app = builder.Build();
        app.MapGroup("/admin").RequireAdminAccess(adminKey).MapGet("/providers", () => "[]");
        var endpoint = ((IEndpointRouteBuilder)app).DataSources.SelectMany(s => s.Endpoints).OfType<RouteEndpoint>().Single();

        var context = Request("/admin/providers", caller, app.Services);
        if (sentKey is not null)
        {
            context.Request.Headers[OperatorAccess.KeyHeader] = sentKey;
        }

        await endpoint.RequestDelegate!(context);
        return context.Response.StatusCode;
    }

    private static async Task<int> CallLoopbackOnlyAsync(string path, string caller)
    {
        await using var services = new ServiceCollection().AddLogging().BuildServiceProvider();
        var app = new ApplicationBuilder(services);
        app.UseLoopbackOnly("/dashboard");
        app.Run(context =>
        {
            context.Response.StatusCode = StatusCodes.Status200OK;
            return Task.CompletedTask;
        });

        var request = Request(path, caller, services);
        await app.Build()(request);
        return request.Response.StatusCode;
    }

    private static DefaultHttpContext Request(string path, string caller, IServiceProvider? services = null)
    {
        var context = new DefaultHttpContext();
        context.Request.Method = HttpMethods.Get;
        context.Request.Path = path;
        context.Connection.RemoteIpAddress = IPAddress.Parse(caller);
        context.Response.Body = new MemoryStream();
        if (services is not null)
        {
            context.RequestServices = services;
        }

        return context;
    }
}
